/**
 * A process: its memory, its file descriptors and the system calls the
 * model offers (mmap, munmap, memfd_create, ftruncate, open, close, ioctl,
 * read, write, fork, exit). Every call answers as the C library does with
 * errno folded in (>= 0 success, -errno failure) and never throws; each
 * failure records a reason that {@link Process.lastError} returns.
 */
import {
  EBADF,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOTTY,
  ENXIO,
  errnoName,
  type UserMemory,
} from '@iommufd-sim/uapi-types';
import { MmAccount } from './accounting.js';
import { AddressSpace, MemFile, PAGE_SIZE, USER_LIMIT } from './address-space.js';
import { IommufdContext } from './context.js';
import { dispatchIommufd } from './dispatch.js';
import { type FileDescription, releaseFile } from './files.js';
import { type Host, MEMFD_MAX_BYTES } from './host.js';
import { type ContextReport, reportContext } from './report.js';
import { vfioDeviceIoctl } from './vfio-cdev.js';

/** Options of {@link Host.createProcess}. */
export interface ProcessOptions {
  /** RLIMIT_MEMLOCK in bytes. Default 8 MiB (the Linux default). */
  readonly memlockLimitBytes?: bigint | number;
  /** Root: CAP_SYS_RESOURCE, and CAP_IPC_LOCK unless `ipcLock` is false. Default true, as the kernel selftests run. */
  readonly privileged?: boolean;
  /**
   * CAP_IPC_LOCK (pins are not charged against RLIMIT_MEMLOCK). Default: as
   * `privileged`. `privileged: true, ipcLock: false` is root after the
   * selftests' drop_cap_ipc_lock: it may still set RLIMIT_MODE.
   */
  readonly ipcLock?: boolean;
  /** The user id whose locked_vm counts its pins. Default 0 when privileged, 1000 otherwise. */
  readonly uid?: number;
}

/** Options of {@link Process.mmap}. */
export interface MmapOptions {
  /** Map this memfd instead of anonymous memory. */
  readonly fd?: number;
  /** Byte offset in the file (page aligned). */
  readonly offset?: bigint | number;
  /** PROT_READ only. */
  readonly readOnly?: boolean;
}

/** The last failure of a process: which call, the errno and why. */
export interface LastError {
  /** The call ('IOMMU_IOAS_MAP', 'mmap', ...). */
  readonly call: string;
  /** The errno (positive). */
  readonly errno: number;
  /** Its name ('EINVAL'). */
  readonly name: string;
  /** What check failed, with the values involved. */
  readonly reason: string;
}

/** What a process has locked and pinned (the kernel's VmLck / VmPin, and its user's locked_vm). */
export interface MemoryStatus {
  /** mm->locked_vm (VmLck) in bytes: charged in RLIMIT_MODE 1 (per process). */
  readonly lockedBytes: bigint;
  /** mm->pinned_vm (VmPin) in bytes: every page pinned for this process, in any mode. */
  readonly pinnedBytes: bigint;
  /** The user's locked_vm in bytes: charged in RLIMIT_MODE 0 (per user), shared by its processes. */
  readonly userLockedBytes: bigint;
  /** RLIMIT_MEMLOCK in bytes. */
  readonly memlockLimitBytes: bigint;
  /** Whether CAP_IPC_LOCK exempts the pins from the limit. */
  readonly ipcLock: boolean;
}

const PAGE = BigInt(PAGE_SIZE);
/** poll(2): the fd is not open. */
const POLLNVAL = 0x20;
/** What Linux reports for a file without a poll method: POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM. */
const DEFAULT_POLLMASK = 0x145;

function toBig(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return undefined;
}

/** A simulated process. */
export class Process {
  /** Its mappings. */
  readonly space = new AddressSpace();
  /** Its memory counters. */
  readonly mm: MmAccount;
  /** Root with every capability. */
  readonly privileged: boolean;
  /** CAP_IPC_LOCK. */
  readonly ipcLock: boolean;
  /** Its user id. */
  readonly uid: number;
  /** RLIMIT_MEMLOCK in bytes. */
  readonly memlockLimitBytes: bigint;
  /** False after exit(). */
  alive = true;
  /** Counts recorded failures (lets the dispatcher see whether a handler explained itself). */
  errorSerial = 0;
  private readonly fds = new Map<number, FileDescription>();
  private last: LastError | null = null;

  constructor(
    /** The host. */
    readonly host: Host,
    /** Its process id. */
    readonly pid: number,
    options: ProcessOptions = {},
  ) {
    this.privileged = options.privileged ?? true;
    this.ipcLock = options.ipcLock ?? this.privileged;
    this.uid = options.uid ?? (this.privileged ? 0 : 1000);
    const limit = toBig(options.memlockLimitBytes) ?? 8n << 20n;
    this.memlockLimitBytes = limit < 0n ? 0n : limit;
    this.mm = new MmAccount(this.limitPages, this.ipcLock);
  }

  /** RLIMIT_MEMLOCK in pages. */
  get limitPages(): number {
    const pages = this.memlockLimitBytes / PAGE;
    return pages > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(pages);
  }

  // ---- errors ------------------------------------------------------------

  /** The last failure, or null when nothing failed yet. */
  lastError(): LastError | null {
    return this.last;
  }

  /** @internal record a failure. */
  recordError(call: string, errno: number, reason: string): void {
    this.errorSerial++;
    this.last = { call, errno, name: errnoName(errno) ?? `errno ${errno}`, reason };
  }

  private fail(call: string, errno: number, reason: string): number {
    this.recordError(call, errno, reason);
    return -errno;
  }

  // ---- memory ----------------------------------------------------------------

  /**
   * Map `length` bytes of zero-filled anonymous memory (or of a memfd) at a
   * fresh page-aligned address. Returns the address, or -errno as a bigint.
   */
  mmap(length: bigint | number, options: MmapOptions = {}): bigint {
    const len = toBig(length);
    if (!this.alive) return BigInt(this.fail('mmap', EINVAL, 'the process has exited'));
    if (len === undefined || len <= 0n || len > BigInt(USER_LIMIT)) {
      return BigInt(this.fail('mmap', EINVAL, `length ${String(length)} is not a usable size`));
    }
    const bytes = Number(((len + PAGE - 1n) / PAGE) * PAGE);
    let file: MemFile | null = null;
    let backingPage = 0;
    if (options.fd !== undefined) {
      const f = this.fds.get(options.fd);
      if (f === undefined) return BigInt(this.fail('mmap', EBADF, `fd ${options.fd} is not open`));
      if (f.kind === 'iommufd') return this.mmapIommufd(f.ctx, toBig(options.offset ?? 0), bytes);
      if (f.kind !== 'memfd')
        return BigInt(this.fail('mmap', EINVAL, `fd ${options.fd} is not a memfd`));
      const off = toBig(options.offset ?? 0) ?? -1n;
      if (off < 0n || off % PAGE !== 0n) {
        return BigInt(this.fail('mmap', EINVAL, 'the file offset must be page aligned'));
      }
      if (off + BigInt(bytes) > BigInt(f.file.backing.pages * PAGE_SIZE)) {
        return BigInt(this.fail('mmap', EINVAL, 'the mapping runs past the largest file size'));
      }
      file = f.file;
      backingPage = Number(off / PAGE);
    }
    const va = this.space.reserve(bytes);
    if (va < 0) return BigInt(this.fail('mmap', ENOMEM, 'the address space is full'));
    const backing = file?.backing ?? this.host.allocBacking(bytes);
    if (backing === undefined)
      return BigInt(this.fail('mmap', ENOMEM, 'physical memory is exhausted'));
    this.space.insert({
      start: va,
      length: bytes,
      backing,
      backingPage,
      writable: options.readOnly !== true,
      file,
    });
    return BigInt(va);
  }

  // iommufd_fops_mmap: a region a driver published, at exactly its offset and length.
  private mmapIommufd(ctx: IommufdContext, offset: bigint | undefined, bytes: number): bigint {
    // mmap(2) refuses an offset that is not page aligned before the driver sees it.
    if (offset === undefined || offset < 0n || offset % PAGE !== 0n) {
      return BigInt(this.fail('mmap', EINVAL, 'the file offset must be page aligned'));
    }
    const region = ctx.mmaps.lookup(offset, bytes);
    if (region === undefined) {
      return BigInt(
        this.fail(
          'mmap',
          ENXIO,
          `no region of this iommufd starts at offset ${String(offset)} with length ${bytes} (mmap the exact offset and length the driver returned)`,
        ),
      );
    }
    const va = this.space.reserve(bytes);
    if (va < 0) return BigInt(this.fail('mmap', ENOMEM, 'the address space is full'));
    const backing = this.host.allocBacking(bytes);
    if (backing === undefined)
      return BigInt(this.fail('mmap', ENOMEM, 'physical memory is exhausted'));
    this.host.memory.write(backing.basePa, region.contents);
    // The mapping holds the region's owner (the vIOMMU) until its last page is unmapped,
    // and the iommufd itself (vm_file): closing the fd does not release the context.
    region.mappings++;
    region.owner.users++;
    ctx.hold();
    backing.onIdle = () => {
      region.mappings--;
      region.owner.users--;
      ctx.release();
    };
    this.space.insert({
      start: va,
      length: bytes,
      backing,
      backingPage: 0,
      writable: true,
      file: null,
      io: true,
    });
    return BigInt(va);
  }

  /** Unmap [va, va + length) (page aligned; unmapped holes are fine). 0 or -EINVAL. */
  munmap(va: bigint | number, length: bigint | number): number {
    const start = toBig(va);
    const len = toBig(length);
    if (start === undefined || len === undefined || start % PAGE !== 0n || len <= 0n) {
      return this.fail('munmap', EINVAL, 'the address must be page aligned and the length > 0');
    }
    if (start + len > BigInt(USER_LIMIT)) {
      return this.fail('munmap', EINVAL, 'the range is outside the user address space');
    }
    const bytes = Number(((len + PAGE - 1n) / PAGE) * PAGE);
    this.space.remove(Number(start), bytes);
    return 0;
  }

  /** `length` bytes at `va`, or null (EFAULT, see lastError) if any is unmapped. */
  readMemory(va: bigint | number, length: number): Uint8Array | null {
    const out = new Uint8Array(Number.isSafeInteger(length) && length > 0 ? length : 0);
    if (!this.copyFromUser(va, out)) {
      this.recordError('readMemory', EFAULT, `[${String(va)}, +${length}) is not all mapped`);
      return null;
    }
    return out;
  }

  /** Write `bytes` at `va`: 0, or -EFAULT if any byte is unmapped or read-only (nothing written then). */
  writeMemory(va: bigint | number, bytes: Uint8Array): number {
    if (!(bytes instanceof Uint8Array)) return this.fail('writeMemory', EFAULT, 'not a Uint8Array');
    if (!this.copyToUser(va, bytes)) {
      return this.fail(
        'writeMemory',
        EFAULT,
        `[${String(va)}, +${bytes.length}) is not all mapped writable`,
      );
    }
    return 0;
  }

  /** @internal copy_from_user. */
  copyFromUser(va: bigint | number, into: Uint8Array, at = 0, length = into.length - at): boolean {
    return this.access(va, length, false, (pa, off, n) => {
      this.host.memory.read(pa, n, into, at + off);
    });
  }

  /** @internal copy_to_user. */
  copyToUser(va: bigint | number, bytes: Uint8Array): boolean {
    return this.access(va, bytes.length, true, (pa, off, n) => {
      this.host.memory.write(pa, bytes.subarray(off, off + n));
    });
  }

  private access(
    va: bigint | number,
    length: number,
    write: boolean,
    fn: (pa: number, offset: number, n: number) => void,
  ): boolean {
    const start = toBig(va);
    if (start === undefined || start < 0n || !Number.isSafeInteger(length) || length < 0)
      return false;
    if (length === 0) return true;
    if (start + BigInt(length) > BigInt(USER_LIMIT)) return false;
    const s = Number(start);
    const firstPage = Math.floor(s / PAGE_SIZE) * PAGE_SIZE;
    const pages = Math.ceil((s + length - firstPage) / PAGE_SIZE);
    const runs = this.space.resolve(firstPage, pages, write);
    if (runs === undefined) return false;
    let done = 0;
    let skip = s - firstPage;
    for (const r of runs) {
      const avail = r.pages * PAGE_SIZE - skip;
      const n = Math.min(avail, length - done);
      if (n > 0) fn(r.pa + skip, done, n);
      done += n;
      skip = 0;
      if (done >= length) break;
    }
    return true;
  }

  /** @internal this process's memory as the ioctl argument at `va`. */
  userMemoryAt(va: bigint): UserMemory {
    return {
      read: (offset, length, into, at) => this.copyFromUser(va + BigInt(offset), into, at, length),
      write: (offset, bytes) => this.copyToUser(va + BigInt(offset), bytes),
      address: va,
    };
  }

  // ---- files -------------------------------------------------------------------

  /** memfd_create: a new empty file of `size` bytes (default 0). Returns the fd or -errno. */
  memfdCreate(name = 'memfd', size: bigint | number = 0): number {
    const sz = toBig(size);
    if (sz === undefined || sz < 0n || sz > BigInt(MEMFD_MAX_BYTES)) {
      return this.fail('memfd_create', EINVAL, `size ${String(size)} is out of range`);
    }
    const backing = this.host.allocBacking(MEMFD_MAX_BYTES);
    if (backing === undefined)
      return this.fail('memfd_create', ENOMEM, 'physical memory is exhausted');
    backing.hold();
    return this.install({ kind: 'memfd', file: new MemFile(name, backing, Number(sz)), refs: 1 });
  }

  /** ftruncate on a memfd. 0 or -errno. */
  ftruncate(fd: number, size: bigint | number): number {
    const f = this.fds.get(fd);
    if (f === undefined) return this.fail('ftruncate', EBADF, `fd ${fd} is not open`);
    if (f.kind !== 'memfd') return this.fail('ftruncate', EINVAL, `fd ${fd} is not a memfd`);
    const sz = toBig(size);
    if (sz === undefined || sz < 0n || sz > BigInt(MEMFD_MAX_BYTES)) {
      return this.fail('ftruncate', EINVAL, `size ${String(size)} is out of range`);
    }
    f.file.size = Number(sz);
    return 0;
  }

  /** The memfd behind `fd`, for IOAS_MAP_FILE. */
  fileOf(fd: number): FileDescription | undefined {
    return this.fds.get(fd);
  }

  /** open(2) for '/dev/iommu' and '/dev/vfio/devices/vfioN'. Returns the fd or -errno. */
  open(path: string): number {
    if (!this.alive) return this.fail('open', EINVAL, 'the process has exited');
    if (path === '/dev/iommu') {
      const ctx = new IommufdContext(this.host);
      ctx.hold();
      return this.install({ kind: 'iommufd', ctx, refs: 1 });
    }
    const dev = typeof path === 'string' ? this.host.device(path) : undefined;
    if (dev === undefined || dev.path !== path) {
      return this.fail(
        'open',
        ENOENT,
        `no such device node '${String(path)}' (this host has /dev/iommu${this.host.devices.map((d) => `, ${d.path}`).join('')})`,
      );
    }
    return this.install({ kind: 'vfio', device: dev, bound: null, refs: 1 });
  }

  /** @internal put a description in the lowest free fd from 3. */
  install(file: FileDescription): number {
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    this.fds.set(fd, file);
    return fd;
  }

  /** close(2). 0 or -EBADF. */
  close(fd: number): number {
    const f = this.fds.get(fd);
    if (f === undefined) return this.fail('close', EBADF, `fd ${String(fd)} is not open`);
    this.fds.delete(fd);
    this.enter(() => releaseFile(f));
    return 0;
  }

  /** ioctl(2): `arg` is the struct's bytes or a user address holding it. >= 0 or -errno. */
  ioctl(fd: number, request: number, arg: Uint8Array | bigint): number {
    try {
      const f = this.fds.get(fd);
      if (f === undefined) return this.fail('ioctl', EBADF, `fd ${String(fd)} is not open`);
      if (typeof request !== 'number' || !Number.isInteger(request)) {
        return this.fail('ioctl', ENOTTY, 'the request is not a number');
      }
      let user: UserMemory | Uint8Array | null;
      if (arg instanceof Uint8Array) user = arg;
      else if (typeof arg === 'bigint' && arg !== 0n) user = this.userMemoryAt(arg);
      else user = null;
      return this.enter(() => {
        switch (f.kind) {
          case 'iommufd':
            return dispatchIommufd(f.ctx, this, request >>> 0, user);
          case 'vfio':
            return vfioDeviceIoctl(f, this, request >>> 0, user);
          default:
            return this.fail('ioctl', ENOTTY, `fd ${fd} (${f.kind}) takes no ioctls`);
        }
      });
    } catch (e) {
      // A thrown exception is a bug in the model: count it (tests require 0) and fail the call.
      this.host.internalErrors++;
      return this.fail('ioctl', EINVAL, `internal error: ${(e as Error).message}`);
    }
  }

  /**
   * read(2) into `buffer` (its length is the count); `pos` is the file
   * position (a nonzero one is pread(2) on a file that cannot seek). On a
   * fault fd: whole fault groups as 40-byte `struct iommu_hwpt_pgfault`
   * records and the bytes read, 0 at once when nothing is queued, ESPIPE for
   * a count that is not a multiple of 40 or a nonzero position. Other fds
   * cannot be read (EINVAL).
   */
  read(fd: number, buffer: Uint8Array, pos = 0): number {
    return this.fileIo('read', fd, buffer, pos);
  }

  /**
   * write(2) from `buffer`. On a fault fd: 8-byte `struct
   * iommu_hwpt_page_response` records {cookie, code}, each answering the
   * group read with that cookie; returns the bytes consumed. ESPIPE for a
   * count that is not a multiple of 8 or a nonzero position; EINVAL when the
   * first response has an unknown cookie or a code other than 0 (SUCCESS)
   * and 1 (INVALID); a later bad one stops there and the bytes before it are
   * returned. Other fds cannot be written (EINVAL).
   */
  write(fd: number, buffer: Uint8Array, pos = 0): number {
    return this.fileIo('write', fd, buffer, pos);
  }

  /**
   * poll(2) on one fd: its revents for POLLIN | POLLOUT. A fault fd is
   * always writable (POLLOUT) and readable (POLLIN | POLLRDNORM) while a
   * group waits; a file without a poll method reports POLLIN | POLLOUT |
   * POLLRDNORM | POLLWRNORM, as Linux does; a closed fd gives POLLNVAL (0x20).
   */
  poll(fd: number): number {
    const f = this.fds.get(fd);
    if (f === undefined) return POLLNVAL;
    if (f.kind === 'fault') return f.fault.poll();
    if (f.kind === 'veventq') return f.veventq.poll();
    return DEFAULT_POLLMASK;
  }

  private fileIo(call: 'read' | 'write', fd: number, buffer: Uint8Array, pos: number): number {
    try {
      const f = this.fds.get(fd);
      if (f === undefined) return this.fail(call, EBADF, `fd ${String(fd)} is not open`);
      if (!(buffer instanceof Uint8Array)) {
        return this.fail(call, EFAULT, 'the buffer is not a Uint8Array');
      }
      const readable = f.kind === 'fault' || f.kind === 'veventq';
      if (!readable || (call === 'write' && f.kind !== 'fault')) {
        return this.fail(
          call,
          EINVAL,
          `fd ${fd} (${f.kind}) cannot be ${call === 'read' ? 'read' : 'written'}`,
        );
      }
      const position = typeof pos === 'number' && Number.isSafeInteger(pos) ? pos : -1;
      return this.enter(() => {
        const r =
          f.kind === 'veventq'
            ? f.veventq.read(buffer, position)
            : call === 'read'
              ? f.fault.read(buffer, position)
              : f.fault.write(buffer, position);
        return typeof r === 'number' ? r : this.fail(call, r.errno, r.reason);
      });
    } catch (e) {
      // A thrown exception is a bug in the model: count it (tests require 0) and fail the call.
      this.host.internalErrors++;
      return this.fail(call, EINVAL, `internal error: ${(e as Error).message}`);
    }
  }

  /** fork(2): the child shares the open files and sees the same memory (shared, not copy-on-write, in this model). */
  fork(): Process {
    const child = new Process(this.host, this.host.allocPid(), {
      memlockLimitBytes: this.memlockLimitBytes,
      privileged: this.privileged,
      ipcLock: this.ipcLock,
      uid: this.uid,
    });
    for (const vma of this.space.mappings) child.space.insert({ ...vma });
    for (const [fd, f] of this.fds) {
      f.refs++;
      child.fds.set(fd, f);
    }
    return child;
  }

  /** exit(2): close every fd and drop the memory. */
  exit(): void {
    if (!this.alive) return;
    for (const fd of [...this.fds.keys()]) this.close(fd);
    this.space.clear();
    this.alive = false;
  }

  /** VmLck / VmPin and the user's locked memory. */
  status(): MemoryStatus {
    return {
      lockedBytes: BigInt(this.mm.lockedPages) * PAGE,
      pinnedBytes: BigInt(this.mm.pinnedPages) * PAGE,
      userLockedBytes: BigInt(this.host.user(this.uid).lockedPages) * PAGE,
      memlockLimitBytes: this.memlockLimitBytes,
      ipcLock: this.ipcLock,
    };
  }

  /** A snapshot of the /dev/iommu context behind `fd` (objects, IOAS areas and ranges), or null. */
  inspect(fd: number): ContextReport | null {
    const f = this.fds.get(fd);
    if (f === undefined || f.kind !== 'iommufd') return null;
    return reportContext(f.ctx);
  }

  /** Open file descriptors and what they are. */
  openFiles(): { fd: number; kind: string }[] {
    return [...this.fds].map(([fd, f]) => ({ fd, kind: f.kind }));
  }

  private enter<T>(fn: () => T): T {
    const prev = this.host.current;
    this.host.current = this;
    try {
      return fn();
    } finally {
      this.host.current = prev;
    }
  }
}
