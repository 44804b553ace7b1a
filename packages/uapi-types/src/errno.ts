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
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const EWOULDBLOCK = EAGAIN;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const ENOTBLK = 15;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EMLINK = 31;
export const EPIPE = 32;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
export const EDEADLOCK = EDEADLK;
export const ENAMETOOLONG = 36;
export const ENOLCK = 37;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENOMSG = 42;
export const EIDRM = 43;
export const ECHRNG = 44;
export const EL2NSYNC = 45;
export const EL3HLT = 46;
export const EL3RST = 47;
export const ELNRNG = 48;
export const EUNATCH = 49;
export const ENOCSI = 50;
export const EL2HLT = 51;
export const EBADE = 52;
export const EBADR = 53;
export const EXFULL = 54;
export const ENOANO = 55;
export const EBADRQC = 56;
export const EBADSLT = 57;
export const EBFONT = 59;
export const ENOSTR = 60;
export const ENODATA = 61;
export const ETIME = 62;
export const ENOSR = 63;
export const ENONET = 64;
export const ENOPKG = 65;
export const EREMOTE = 66;
export const ENOLINK = 67;
export const EADV = 68;
export const ESRMNT = 69;
export const ECOMM = 70;
export const EPROTO = 71;
export const EMULTIHOP = 72;
export const EDOTDOT = 73;
export const EBADMSG = 74;
export const EOVERFLOW = 75;
export const ENOTUNIQ = 76;
export const EBADFD = 77;
export const EREMCHG = 78;
export const ELIBACC = 79;
export const ELIBBAD = 80;
export const ELIBSCN = 81;
export const ELIBMAX = 82;
export const ELIBEXEC = 83;
export const EILSEQ = 84;
export const ERESTART = 85;
export const ESTRPIPE = 86;
export const EUSERS = 87;
export const ENOTSOCK = 88;
export const EDESTADDRREQ = 89;
export const EMSGSIZE = 90;
export const EPROTOTYPE = 91;
export const ENOPROTOOPT = 92;
export const EPROTONOSUPPORT = 93;
export const ESOCKTNOSUPPORT = 94;
export const EOPNOTSUPP = 95;
export const ENOTSUP = EOPNOTSUPP;
export const EPFNOSUPPORT = 96;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ENETRESET = 102;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ENOBUFS = 105;
export const EISCONN = 106;
export const ENOTCONN = 107;
export const ESHUTDOWN = 108;
export const ETOOMANYREFS = 109;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EHOSTDOWN = 112;
export const EHOSTUNREACH = 113;
export const EALREADY = 114;
export const EINPROGRESS = 115;
export const ESTALE = 116;
export const EUCLEAN = 117;
export const ENOTNAM = 118;
export const ENAVAIL = 119;
export const EISNAM = 120;
export const EREMOTEIO = 121;
export const EDQUOT = 122;
export const ENOMEDIUM = 123;
export const EMEDIUMTYPE = 124;
export const ECANCELED = 125;
export const ENOKEY = 126;
export const EKEYEXPIRED = 127;
export const EKEYREVOKED = 128;
export const EKEYREJECTED = 129;
export const EOWNERDEAD = 130;
export const ENOTRECOVERABLE = 131;
export const ERFKILL = 132;
export const EHWPOISON = 133;
