/**
 * Linux errno numbers as x86-64 (asm-generic) defines them, each with its name
 * and a one-line meaning, so a result of -22 can be shown as EINVAL with why.
 */

/** One errno: its number, its name and what it means. */
export interface ErrnoInfo {
  readonly errno: number;
  readonly name: string;
  readonly meaning: string;
}

// [number, name, meaning]; aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) follow below.
const TABLE: readonly (readonly [number, string, string])[] = [
  [1, 'EPERM', 'operation not permitted (a privilege is missing)'],
  [2, 'ENOENT', 'no such object, id or range'],
  [3, 'ESRCH', 'no such process'],
  [4, 'EINTR', 'interrupted by a signal'],
  [5, 'EIO', 'input/output error, or an operation the driver cannot perform'],
  [6, 'ENXIO', 'no such device or address'],
  [7, 'E2BIG', 'argument too big: non-zero bytes past what the kernel understands'],
  [8, 'ENOEXEC', 'not an executable format'],
  [9, 'EBADF', 'bad file descriptor'],
  [10, 'ECHILD', 'no child processes'],
  [11, 'EAGAIN', 'try again (would block)'],
  [12, 'ENOMEM', 'out of memory, or a memory limit would be exceeded'],
  [13, 'EACCES', 'permission denied'],
  [14, 'EFAULT', 'bad address: user memory could not be read or written'],
  [15, 'ENOTBLK', 'block device required'],
  [16, 'EBUSY', 'in use: something else still holds the object or range'],
  [17, 'EEXIST', 'already exists or overlaps something that exists'],
  [18, 'EXDEV', 'cross-device link'],
  [19, 'ENODEV', 'no such device, or the feature is not set up'],
  [20, 'ENOTDIR', 'not a directory'],
  [21, 'EISDIR', 'is a directory'],
  [22, 'EINVAL', 'invalid argument'],
  [23, 'ENFILE', 'too many open files in the system'],
  [24, 'EMFILE', 'too many open files in the process'],
  [25, 'ENOTTY', 'inappropriate ioctl: the request number is unknown to this file'],
  [26, 'ETXTBSY', 'text file busy'],
  [27, 'EFBIG', 'file too large'],
  [28, 'ENOSPC', 'no space left: no free IOVA range is large enough'],
  [29, 'ESPIPE', 'illegal seek, or a read/write length the file does not accept'],
  [30, 'EROFS', 'read-only file system'],
  [31, 'EMLINK', 'too many links'],
  [32, 'EPIPE', 'broken pipe'],
  [33, 'EDOM', 'argument out of domain'],
  [34, 'ERANGE', 'result out of range'],
  [35, 'EDEADLK', 'resource deadlock would occur'],
  [36, 'ENAMETOOLONG', 'file name too long'],
  [37, 'ENOLCK', 'no locks available'],
  [38, 'ENOSYS', 'function not implemented'],
  [39, 'ENOTEMPTY', 'directory not empty'],
  [40, 'ELOOP', 'too many levels of symbolic links'],
  [42, 'ENOMSG', 'no message of the desired type'],
  [43, 'EIDRM', 'identifier removed'],
  [44, 'ECHRNG', 'channel number out of range'],
  [45, 'EL2NSYNC', 'level 2 not synchronized'],
  [46, 'EL3HLT', 'level 3 halted'],
  [47, 'EL3RST', 'level 3 reset'],
  [48, 'ELNRNG', 'link number out of range'],
  [49, 'EUNATCH', 'protocol driver not attached'],
  [50, 'ENOCSI', 'no CSI structure available'],
  [51, 'EL2HLT', 'level 2 halted'],
  [52, 'EBADE', 'invalid exchange (the selftest uses it for a page mismatch)'],
  [53, 'EBADR', 'invalid request descriptor'],
  [54, 'EXFULL', 'exchange full'],
  [55, 'ENOANO', 'no anode'],
  [56, 'EBADRQC', 'invalid request code'],
  [57, 'EBADSLT', 'invalid slot'],
  [59, 'EBFONT', 'bad font file format'],
  [60, 'ENOSTR', 'device not a stream'],
  [61, 'ENODATA', 'no data available'],
  [62, 'ETIME', 'timer expired'],
  [63, 'ENOSR', 'out of streams resources'],
  [64, 'ENONET', 'machine is not on the network'],
  [65, 'ENOPKG', 'package not installed'],
  [66, 'EREMOTE', 'object is remote'],
  [67, 'ENOLINK', 'link has been severed'],
  [68, 'EADV', 'advertise error'],
  [69, 'ESRMNT', 'srmount error'],
  [70, 'ECOMM', 'communication error on send'],
  [71, 'EPROTO', 'protocol error'],
  [72, 'EMULTIHOP', 'multihop attempted'],
  [73, 'EDOTDOT', 'RFS specific error'],
  [74, 'EBADMSG', 'bad message'],
  [75, 'EOVERFLOW', 'value too large: an address or length computation overflows'],
  [76, 'ENOTUNIQ', 'name not unique on network'],
  [77, 'EBADFD', 'file descriptor in bad state, or of the wrong kind'],
  [78, 'EREMCHG', 'remote address changed'],
  [79, 'ELIBACC', 'cannot access a needed shared library'],
  [80, 'ELIBBAD', 'accessing a corrupted shared library'],
  [81, 'ELIBSCN', '.lib section in a.out corrupted'],
  [82, 'ELIBMAX', 'attempting to link in too many shared libraries'],
  [83, 'ELIBEXEC', 'cannot exec a shared library directly'],
  [84, 'EILSEQ', 'illegal byte sequence'],
  [85, 'ERESTART', 'interrupted system call should be restarted'],
  [86, 'ESTRPIPE', 'streams pipe error'],
  [87, 'EUSERS', 'too many users'],
  [88, 'ENOTSOCK', 'socket operation on non-socket'],
  [89, 'EDESTADDRREQ', 'destination address required'],
  [90, 'EMSGSIZE', 'message too long: the output array is too small (count written back)'],
  [91, 'EPROTOTYPE', 'protocol wrong type for socket'],
  [92, 'ENOPROTOOPT', 'protocol not available'],
  [93, 'EPROTONOSUPPORT', 'protocol not supported'],
  [94, 'ESOCKTNOSUPPORT', 'socket type not supported'],
  [95, 'EOPNOTSUPP', 'not supported: unknown flag, type, option or reserved field set'],
  [96, 'EPFNOSUPPORT', 'protocol family not supported'],
  [97, 'EAFNOSUPPORT', 'address family not supported by protocol'],
  [98, 'EADDRINUSE', 'address in use: the range conflicts with a mapping or reservation'],
  [99, 'EADDRNOTAVAIL', 'cannot assign requested address'],
  [100, 'ENETDOWN', 'network is down'],
  [101, 'ENETUNREACH', 'network is unreachable'],
  [102, 'ENETRESET', 'network dropped connection on reset'],
  [103, 'ECONNABORTED', 'software caused connection abort'],
  [104, 'ECONNRESET', 'connection reset by peer'],
  [105, 'ENOBUFS', 'no buffer space available'],
  [106, 'EISCONN', 'transport endpoint is already connected'],
  [107, 'ENOTCONN', 'transport endpoint is not connected'],
  [108, 'ESHUTDOWN', 'cannot send after transport endpoint shutdown'],
  [109, 'ETOOMANYREFS', 'too many references'],
  [110, 'ETIMEDOUT', 'connection timed out'],
  [111, 'ECONNREFUSED', 'connection refused'],
  [112, 'EHOSTDOWN', 'host is down'],
  [113, 'EHOSTUNREACH', 'no route to host'],
  [114, 'EALREADY', 'operation already in progress'],
  [115, 'EINPROGRESS', 'operation now in progress'],
  [116, 'ESTALE', 'stale file handle'],
  [117, 'EUCLEAN', 'structure needs cleaning'],
  [118, 'ENOTNAM', 'not a XENIX named type file'],
  [119, 'ENAVAIL', 'no XENIX semaphores available'],
  [120, 'EISNAM', 'is a named type file'],
  [121, 'EREMOTEIO', 'remote I/O error'],
  [122, 'EDQUOT', 'disk quota exceeded'],
  [123, 'ENOMEDIUM', 'no medium found'],
  [124, 'EMEDIUMTYPE', 'wrong medium type'],
  [125, 'ECANCELED', 'operation canceled'],
  [126, 'ENOKEY', 'required key not available'],
  [127, 'EKEYEXPIRED', 'key has expired'],
  [128, 'EKEYREVOKED', 'key has been revoked'],
  [129, 'EKEYREJECTED', 'key was rejected by service'],
  [130, 'EOWNERDEAD', 'owner died'],
  [131, 'ENOTRECOVERABLE', 'state not recoverable'],
  [132, 'ERFKILL', 'operation not possible due to RF-kill'],
  [133, 'EHWPOISON', 'memory page has hardware error'],
];

/** Second names for numbers above (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK, ENOTSUP = EOPNOTSUPP). */
export const errnoAliases: Readonly<Record<string, number>> = Object.freeze({
  EWOULDBLOCK: 11,
  EDEADLOCK: 35,
  ENOTSUP: 95,
});

/** Every errno by number, as Linux x86-64 numbers them (1-133; 41 and 58 are unused). */
export const errnos: ReadonlyMap<number, ErrnoInfo> = new Map(
  TABLE.map(([errno, name, meaning]) => [errno, Object.freeze({ errno, name, meaning })]),
);

const byName = new Map<string, number>([
  ...TABLE.map(([errno, name]): [string, number] => [name, errno]),
  ...Object.entries(errnoAliases),
]);

/** The name of an errno (`errnoName(22) === 'EINVAL'`); a negative result is read as -errno. */
export function errnoName(errno: number): string | undefined {
  return errnos.get(Math.abs(errno))?.name;
}

/** What an errno means, in one line (`errnoMeaning(22) === 'invalid argument'`). */
export function errnoMeaning(errno: number): string | undefined {
  return errnos.get(Math.abs(errno))?.meaning;
}

/** The number of an errno name, aliases included (`errnoNumber('EDEADLOCK') === 35`). */
export function errnoNumber(name: string): number | undefined {
  return byName.get(name);
}

/**
 * A result of a syscall-shaped call for people: `0`, `'EINVAL (-22): invalid argument'`,
 * or the number itself when it is not an errno.
 */
export function describeResult(result: number): string {
  if (result >= 0) return String(result);
  const info = errnos.get(-result);
  return info === undefined ? String(result) : `${info.name} (${result}): ${info.meaning}`;
}

// Every errno by name, for code that reads like C (`return -EINVAL`).
/** EPERM (1): operation not permitted (a privilege is missing). */
export const EPERM = 1;
/** ENOENT (2): no such object, id or range. */
export const ENOENT = 2;
/** ESRCH (3): no such process. */
export const ESRCH = 3;
/** EINTR (4): interrupted by a signal. */
export const EINTR = 4;
/** EIO (5): input/output error, or an operation the driver cannot perform. */
export const EIO = 5;
/** ENXIO (6): no such device or address. */
export const ENXIO = 6;
/** E2BIG (7): argument too big: non-zero bytes past what the kernel understands. */
export const E2BIG = 7;
/** ENOEXEC (8): not an executable format. */
export const ENOEXEC = 8;
/** EBADF (9): bad file descriptor. */
export const EBADF = 9;
/** ECHILD (10): no child processes. */
export const ECHILD = 10;
/** EAGAIN (11): try again (would block). */
export const EAGAIN = 11;
/** EWOULDBLOCK: another name for EAGAIN. */
export const EWOULDBLOCK = EAGAIN;
/** ENOMEM (12): out of memory, or a memory limit would be exceeded. */
export const ENOMEM = 12;
/** EACCES (13): permission denied. */
export const EACCES = 13;
/** EFAULT (14): bad address: user memory could not be read or written. */
export const EFAULT = 14;
/** ENOTBLK (15): block device required. */
export const ENOTBLK = 15;
/** EBUSY (16): in use: something else still holds the object or range. */
export const EBUSY = 16;
/** EEXIST (17): already exists or overlaps something that exists. */
export const EEXIST = 17;
/** EXDEV (18): cross-device link. */
export const EXDEV = 18;
/** ENODEV (19): no such device, or the feature is not set up. */
export const ENODEV = 19;
/** ENOTDIR (20): not a directory. */
export const ENOTDIR = 20;
/** EISDIR (21): is a directory. */
export const EISDIR = 21;
/** EINVAL (22): invalid argument. */
export const EINVAL = 22;
/** ENFILE (23): too many open files in the system. */
export const ENFILE = 23;
/** EMFILE (24): too many open files in the process. */
export const EMFILE = 24;
/** ENOTTY (25): inappropriate ioctl: the request number is unknown to this file. */
export const ENOTTY = 25;
/** ETXTBSY (26): text file busy. */
export const ETXTBSY = 26;
/** EFBIG (27): file too large. */
export const EFBIG = 27;
/** ENOSPC (28): no space left: no free IOVA range is large enough. */
export const ENOSPC = 28;
/** ESPIPE (29): illegal seek, or a read/write length the file does not accept. */
export const ESPIPE = 29;
/** EROFS (30): read-only file system. */
export const EROFS = 30;
/** EMLINK (31): too many links. */
export const EMLINK = 31;
/** EPIPE (32): broken pipe. */
export const EPIPE = 32;
/** EDOM (33): argument out of domain. */
export const EDOM = 33;
/** ERANGE (34): result out of range. */
export const ERANGE = 34;
/** EDEADLK (35): resource deadlock would occur. */
export const EDEADLK = 35;
/** EDEADLOCK: another name for EDEADLK. */
export const EDEADLOCK = EDEADLK;
/** ENAMETOOLONG (36): file name too long. */
export const ENAMETOOLONG = 36;
/** ENOLCK (37): no locks available. */
export const ENOLCK = 37;
/** ENOSYS (38): function not implemented. */
export const ENOSYS = 38;
/** ENOTEMPTY (39): directory not empty. */
export const ENOTEMPTY = 39;
/** ELOOP (40): too many levels of symbolic links. */
export const ELOOP = 40;
/** ENOMSG (42): no message of the desired type. */
export const ENOMSG = 42;
/** EIDRM (43): identifier removed. */
export const EIDRM = 43;
/** ECHRNG (44): channel number out of range. */
export const ECHRNG = 44;
/** EL2NSYNC (45): level 2 not synchronized. */
export const EL2NSYNC = 45;
/** EL3HLT (46): level 3 halted. */
export const EL3HLT = 46;
/** EL3RST (47): level 3 reset. */
export const EL3RST = 47;
/** ELNRNG (48): link number out of range. */
export const ELNRNG = 48;
/** EUNATCH (49): protocol driver not attached. */
export const EUNATCH = 49;
/** ENOCSI (50): no CSI structure available. */
export const ENOCSI = 50;
/** EL2HLT (51): level 2 halted. */
export const EL2HLT = 51;
/** EBADE (52): invalid exchange (the selftest uses it for a page mismatch). */
export const EBADE = 52;
/** EBADR (53): invalid request descriptor. */
export const EBADR = 53;
/** EXFULL (54): exchange full. */
export const EXFULL = 54;
/** ENOANO (55): no anode. */
export const ENOANO = 55;
/** EBADRQC (56): invalid request code. */
export const EBADRQC = 56;
/** EBADSLT (57): invalid slot. */
export const EBADSLT = 57;
/** EBFONT (59): bad font file format. */
export const EBFONT = 59;
/** ENOSTR (60): device not a stream. */
export const ENOSTR = 60;
/** ENODATA (61): no data available. */
export const ENODATA = 61;
/** ETIME (62): timer expired. */
export const ETIME = 62;
/** ENOSR (63): out of streams resources. */
export const ENOSR = 63;
/** ENONET (64): machine is not on the network. */
export const ENONET = 64;
/** ENOPKG (65): package not installed. */
export const ENOPKG = 65;
/** EREMOTE (66): object is remote. */
export const EREMOTE = 66;
/** ENOLINK (67): link has been severed. */
export const ENOLINK = 67;
/** EADV (68): advertise error. */
export const EADV = 68;
/** ESRMNT (69): srmount error. */
export const ESRMNT = 69;
/** ECOMM (70): communication error on send. */
export const ECOMM = 70;
/** EPROTO (71): protocol error. */
export const EPROTO = 71;
/** EMULTIHOP (72): multihop attempted. */
export const EMULTIHOP = 72;
/** EDOTDOT (73): RFS specific error. */
export const EDOTDOT = 73;
/** EBADMSG (74): bad message. */
export const EBADMSG = 74;
/** EOVERFLOW (75): value too large: an address or length computation overflows. */
export const EOVERFLOW = 75;
/** ENOTUNIQ (76): name not unique on network. */
export const ENOTUNIQ = 76;
/** EBADFD (77): file descriptor in bad state, or of the wrong kind. */
export const EBADFD = 77;
/** EREMCHG (78): remote address changed. */
export const EREMCHG = 78;
/** ELIBACC (79): cannot access a needed shared library. */
export const ELIBACC = 79;
/** ELIBBAD (80): accessing a corrupted shared library. */
export const ELIBBAD = 80;
/** ELIBSCN (81): .lib section in a.out corrupted. */
export const ELIBSCN = 81;
/** ELIBMAX (82): attempting to link in too many shared libraries. */
export const ELIBMAX = 82;
/** ELIBEXEC (83): cannot exec a shared library directly. */
export const ELIBEXEC = 83;
/** EILSEQ (84): illegal byte sequence. */
export const EILSEQ = 84;
/** ERESTART (85): interrupted system call should be restarted. */
export const ERESTART = 85;
/** ESTRPIPE (86): streams pipe error. */
export const ESTRPIPE = 86;
/** EUSERS (87): too many users. */
export const EUSERS = 87;
/** ENOTSOCK (88): socket operation on non-socket. */
export const ENOTSOCK = 88;
/** EDESTADDRREQ (89): destination address required. */
export const EDESTADDRREQ = 89;
/** EMSGSIZE (90): message too long: the output array is too small (count written back). */
export const EMSGSIZE = 90;
/** EPROTOTYPE (91): protocol wrong type for socket. */
export const EPROTOTYPE = 91;
/** ENOPROTOOPT (92): protocol not available. */
export const ENOPROTOOPT = 92;
/** EPROTONOSUPPORT (93): protocol not supported. */
export const EPROTONOSUPPORT = 93;
/** ESOCKTNOSUPPORT (94): socket type not supported. */
export const ESOCKTNOSUPPORT = 94;
/** EOPNOTSUPP (95): not supported: unknown flag, type, option or reserved field set. */
export const EOPNOTSUPP = 95;
/** ENOTSUP: another name for EOPNOTSUPP. */
export const ENOTSUP = EOPNOTSUPP;
/** EPFNOSUPPORT (96): protocol family not supported. */
export const EPFNOSUPPORT = 96;
/** EAFNOSUPPORT (97): address family not supported by protocol. */
export const EAFNOSUPPORT = 97;
/** EADDRINUSE (98): address in use: the range conflicts with a mapping or reservation. */
export const EADDRINUSE = 98;
/** EADDRNOTAVAIL (99): cannot assign requested address. */
export const EADDRNOTAVAIL = 99;
/** ENETDOWN (100): network is down. */
export const ENETDOWN = 100;
/** ENETUNREACH (101): network is unreachable. */
export const ENETUNREACH = 101;
/** ENETRESET (102): network dropped connection on reset. */
export const ENETRESET = 102;
/** ECONNABORTED (103): software caused connection abort. */
export const ECONNABORTED = 103;
/** ECONNRESET (104): connection reset by peer. */
export const ECONNRESET = 104;
/** ENOBUFS (105): no buffer space available. */
export const ENOBUFS = 105;
/** EISCONN (106): transport endpoint is already connected. */
export const EISCONN = 106;
/** ENOTCONN (107): transport endpoint is not connected. */
export const ENOTCONN = 107;
/** ESHUTDOWN (108): cannot send after transport endpoint shutdown. */
export const ESHUTDOWN = 108;
/** ETOOMANYREFS (109): too many references. */
export const ETOOMANYREFS = 109;
/** ETIMEDOUT (110): connection timed out. */
export const ETIMEDOUT = 110;
/** ECONNREFUSED (111): connection refused. */
export const ECONNREFUSED = 111;
/** EHOSTDOWN (112): host is down. */
export const EHOSTDOWN = 112;
/** EHOSTUNREACH (113): no route to host. */
export const EHOSTUNREACH = 113;
/** EALREADY (114): operation already in progress. */
export const EALREADY = 114;
/** EINPROGRESS (115): operation now in progress. */
export const EINPROGRESS = 115;
/** ESTALE (116): stale file handle. */
export const ESTALE = 116;
/** EUCLEAN (117): structure needs cleaning. */
export const EUCLEAN = 117;
/** ENOTNAM (118): not a XENIX named type file. */
export const ENOTNAM = 118;
/** ENAVAIL (119): no XENIX semaphores available. */
export const ENAVAIL = 119;
/** EISNAM (120): is a named type file. */
export const EISNAM = 120;
/** EREMOTEIO (121): remote I/O error. */
export const EREMOTEIO = 121;
/** EDQUOT (122): disk quota exceeded. */
export const EDQUOT = 122;
/** ENOMEDIUM (123): no medium found. */
export const ENOMEDIUM = 123;
/** EMEDIUMTYPE (124): wrong medium type. */
export const EMEDIUMTYPE = 124;
/** ECANCELED (125): operation canceled. */
export const ECANCELED = 125;
/** ENOKEY (126): required key not available. */
export const ENOKEY = 126;
/** EKEYEXPIRED (127): key has expired. */
export const EKEYEXPIRED = 127;
/** EKEYREVOKED (128): key has been revoked. */
export const EKEYREVOKED = 128;
/** EKEYREJECTED (129): key was rejected by service. */
export const EKEYREJECTED = 129;
/** EOWNERDEAD (130): owner died. */
export const EOWNERDEAD = 130;
/** ENOTRECOVERABLE (131): state not recoverable. */
export const ENOTRECOVERABLE = 131;
/** ERFKILL (132): operation not possible due to RF-kill. */
export const ERFKILL = 132;
/** EHWPOISON (133): memory page has hardware error. */
export const EHWPOISON = 133;
