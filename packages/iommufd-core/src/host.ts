/**
 * createHost: the machine the model runs on. Physical memory, the IOMMUs
 * and the devices behind them (each with a VFIO cdev node
 * /dev/vfio/devices/vfioN in configuration order), the users whose locked
 * memory is counted, and the processes. With `selftest: true` it also has the
 * test kernel's mock IOMMU, where IOMMU_TEST_CMD makes its mock devices.
 */
import {
  createIommu,
  type Device,
  type DeviceConfig,
  DmaEngine,
  type DmaOutcome,
  type DmaRequest,
  FrameAllocator,
  Device as HwDevice,
  type IommuConfig,
  type IommuInstance,
  MockIommu,
  PhysicalMemory,
} from '@iommufd-sim/hw-models';
import { MOCK_FLAGS_DEVICE_PASID } from '@iommufd-sim/uapi-types';
import {
  Tegra241Cmdqv,
  type Tegra241CmdqvConfig,
  type ViommuHostSupport,
  type ViommuSettings,
} from '@iommufd-sim/viommu';
import { UserAccount } from './accounting.js';
import { Backing, HPAGE_SIZE, PAGE_SIZE } from './address-space.js';
import type { DeviceObject } from './device.js';
import { type DmaTransfer, IopfRouter } from './iopf.js';
import { Process, type ProcessOptions } from './process.js';
import type { ViommuObject } from './viommu.js';

/** A device in a host configuration: the hardware description plus the IOMMU it sits behind. */
export interface HostDeviceConfig extends DeviceConfig {
  /** Name of the IOMMU (from `iommus`) it sits behind. */
  readonly iommu: string;
}

/** What {@link createHost} builds. */
export interface HostConfig {
  /** The IOMMUs. Default: one IOMMU of model 'mock' named 'mock0'. */
  readonly iommus?: readonly IommuConfig[];
  /** The devices, each behind one of the IOMMUs. Default: none. */
  readonly devices?: readonly HostDeviceConfig[];
  /** Enable IOMMU_TEST_CMD and the selftest mock devices (CONFIG_IOMMUFD_TEST). Default false. */
  readonly selftest?: boolean;
  /** vIOMMU options. Default: the kernel's behaviour, no Tegra241 CMDQV. */
  readonly viommu?: HostViommuConfig;
}

/** vIOMMU options of a host. */
export interface HostViommuConfig {
  /**
   * The multi-SID extension (not in Linux): a vDEVICE may carry a virtual
   * stream id per physical one, set with IOMMUFD_EXT_VDEVICE_SET_VSID (see
   * the viommu package). Off by default, so vDEVICEs have one SID as in 6.17.
   */
  readonly multiSid?: boolean;
  /** SMMUv3 instances, by IOMMU name, that are Tegra241 SMMUs with a CMDQV (vIOMMU type TEGRA241_CMDQV). */
  readonly tegra241Cmdqv?: Readonly<Record<string, Tegra241CmdqvConfig>>;
}

/** A device of the host, with its VFIO cdev node. */
export class HostDevice {
  /** The iommufd device object it is bound to, if any. */
  boundTo: DeviceObject | null = null;

  constructor(
    /** Its name (a BDF for PCI devices). */
    readonly name: string,
    /** N of /dev/vfio/devices/vfioN (-1 for selftest mock devices, which have no node). */
    readonly index: number,
    /** The hardware model. */
    readonly device: Device,
    /** The IOMMU it sits behind. */
    readonly iommu: IommuInstance,
  ) {}

  /** Its cdev path, or '' for a mock device. */
  get path(): string {
    return this.index < 0 ? '' : `/dev/vfio/devices/vfio${this.index}`;
  }
}

// Physical memory plan: IOMMU tables at [64 GiB, 128 GiB) (the allocator's
// default), process memory from 1 TiB up, each mapping or file its own run.
const RAM_BASE = 2 ** 40;
const RAM_LIMIT = 2 ** 48;
/** Largest memfd size (each file reserves this much physical address space). */
export const MEMFD_MAX_BYTES = 2 ** 36;

/** The simulated machine. */
export class Host {
  /** Physical memory (process pages, IOMMU tables, DMA targets). */
  readonly memory = new PhysicalMemory();
  /** Where IOMMU tables come from. */
  readonly tables: FrameAllocator;
  /** The IOMMUs by name. */
  readonly iommus = new Map<string, IommuInstance>();
  /** The configured devices, in order (vfio0, vfio1, ...). */
  readonly devices: HostDevice[] = [];
  /** Moves device DMA through the IOMMUs. */
  readonly dma: DmaEngine;
  /** IOMMU_TEST_CMD is available. */
  readonly selftest: boolean;
  /** The selftest mock IOMMU (selftest hosts only). */
  readonly mockIommu: MockIommu | null = null;
  /** The process making the current system call (the kernel's `current`). */
  current: Process | null = null;
  /** IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT (global to the kernel). */
  tempMemoryLimit = 65536;
  /** Exceptions caught at the system-call boundary (each one is a model bug; tests require 0). */
  internalErrors = 0;
  /** The I/O page fault path: every IOMMU's page requests go through it to FAULT objects. */
  readonly iopf: IopfRouter;
  /**
   * Called when a transfer from {@link deviceDma} that stopped for a page
   * request ends: retried to the end ('done'), failed on retry ('fault') or
   * answered INVALID ('aborted').
   */
  onDmaComplete: ((transfer: DmaTransfer) => void) | null = null;
  /** Host-wide vIOMMU settings. */
  readonly viommuSettings: ViommuSettings;
  /** Every live vIOMMU of every context (hardware events are offered to them). */
  readonly liveViommus = new Set<ViommuObject>();
  private readonly cmdqvs = new Map<IommuInstance, Tegra241Cmdqv>();
  private readonly hostDevices = new WeakMap<Device, HostDevice>();
  private readonly users = new Map<number, UserAccount>();
  private readonly backings: Backing[] = [];
  private nextPa = RAM_BASE;
  private nextPid = 1000;
  private mockSerial = 0;

  constructor(config: HostConfig = {}) {
    this.tables = new FrameAllocator(this.memory);
    this.dma = new DmaEngine(this.memory);
    this.selftest = config.selftest === true;
    this.iopf = new IopfRouter(this);
    const env = { memory: this.memory, allocator: this.tables };
    this.viommuSettings = { multiSid: config.viommu?.multiSid === true };
    for (const c of config.iommus ?? [{ name: 'mock0', model: 'mock' as const }]) {
      if (this.iommus.has(c.name)) throw new Error(`two IOMMUs are named '${c.name}'`);
      const iommu = createIommu(c, env);
      this.iopf.install(iommu);
      this.installEvents(iommu);
      this.iommus.set(c.name, iommu);
    }
    for (const [name, cmdqv] of Object.entries(config.viommu?.tegra241Cmdqv ?? {})) {
      const iommu = this.iommus.get(name);
      if (iommu?.model !== 'smmuv3') {
        throw new Error(
          `viommu.tegra241Cmdqv names '${name}', which is not an SMMUv3 of this host`,
        );
      }
      this.cmdqvs.set(iommu, new Tegra241Cmdqv(cmdqv));
    }
    for (const d of config.devices ?? []) {
      const iommu = this.iommus.get(d.iommu);
      if (iommu === undefined) {
        throw new Error(
          `device '${d.name}' names IOMMU '${d.iommu}', which is not among [${[...this.iommus.keys()].join(', ')}]`,
        );
      }
      if (this.devices.some((x) => x.name === d.name))
        throw new Error(`two devices are named '${d.name}'`);
      const device = new HwDevice(d);
      iommu.addDevice(device);
      const hostDevice = new HostDevice(d.name, this.devices.length, device, iommu);
      this.hostDevices.set(device, hostDevice);
      this.devices.push(hostDevice);
    }
    if (this.selftest) {
      this.mockIommu = new MockIommu({ name: 'iommufd-selftest', model: 'mock' }, env);
      this.iopf.install(this.mockIommu);
      this.installEvents(this.mockIommu);
    }
  }

  /** What vIOMMUs on `iommu` may be (the settings, and its CMDQV if it is a Tegra241 SMMU). */
  viommuSupport(iommu: IommuInstance): ViommuHostSupport {
    return { settings: this.viommuSettings, cmdqv: this.cmdqvs.get(iommu) ?? null };
  }

  /** The Tegra241 CMDQV of `iommu`, if it has one. */
  cmdqvOf(iommu: IommuInstance): Tegra241Cmdqv | undefined {
    return this.cmdqvs.get(iommu);
  }

  // Every fault the hardware records is offered to the vIOMMUs of that IOMMU
  // (arm_smmu_handle_event → arm_vmaster_report_event).
  private installEvents(iommu: IommuInstance): void {
    iommu.onFault = (fault) => {
      for (const v of this.liveViommus) {
        if (v.driver.iommu !== iommu) continue;
        const event = v.driver.guestEvent(fault);
        if (event !== null) v.report(event);
      }
    };
  }

  /** A new process; see {@link ProcessOptions}. */
  createProcess(options: ProcessOptions = {}): Process {
    return new Process(this, this.allocPid(), options);
  }

  /** @internal the next process id (fork takes one too). */
  allocPid(): number {
    return this.nextPid++;
  }

  /** The locked-memory account of user `uid`. */
  user(uid: number): UserAccount {
    let u = this.users.get(uid);
    if (u === undefined) {
      u = new UserAccount(uid);
      this.users.set(uid, u);
    }
    return u;
  }

  /** The device behind /dev/vfio/devices/vfioN or with this name. */
  device(nameOrPath: string): HostDevice | undefined {
    return this.devices.find((d) => d.name === nameOrPath || d.path === nameOrPath);
  }

  /** Reserve physical frames for `bytes` of process memory (2 MiB aligned when large); undefined when out of space. */
  allocBacking(bytes: number): Backing | undefined {
    const pages = Math.ceil(bytes / PAGE_SIZE);
    const align = pages * PAGE_SIZE >= HPAGE_SIZE ? HPAGE_SIZE : PAGE_SIZE;
    const pa = Math.ceil(this.nextPa / align) * align;
    if (pa + pages * PAGE_SIZE > RAM_LIMIT) return undefined;
    this.nextPa = pa + pages * PAGE_SIZE;
    const backing = new Backing(pa, pages, this.memory);
    this.backings.push(backing);
    return backing;
  }

  /** {@link Host.backingAt} as one shared function value: every pages object keeps it, so none carries a closure. */
  readonly backingLookup = (pa: number): Backing | undefined => this.backingAt(pa);

  /** The backing a physical address belongs to. */
  backingAt(pa: number): Backing | undefined {
    let lo = 0;
    let hi = this.backings.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.backings[mid] as Backing;
      if (pa < b.basePa) hi = mid - 1;
      else if (pa >= b.basePa + b.pages * PAGE_SIZE) lo = mid + 1;
      else return b;
    }
    return undefined;
  }

  /** Pages pinned right now across the host (0 once every fd is closed). */
  pinnedPages(): number {
    let n = 0;
    for (const b of this.backings) n += b.pinnedPages;
    return n;
  }

  /** @internal a mock device for IOMMU_TEST_OP_MOCK_DOMAIN. */
  createMockDevice(flags: number): HostDevice {
    const mock = this.mockIommu as MockIommu;
    const name = `iommufd_mock${this.mockSerial++}`;
    // Only MOCK_FLAGS_DEVICE_PASID devices have PASIDs (20 bits, as the selftest's mock bus gives them).
    const device = new HwDevice({
      name,
      pasidBits: (flags & MOCK_FLAGS_DEVICE_PASID) !== 0 ? 20 : 0,
    });
    mock.addDevice(device, flags);
    const hostDevice = new HostDevice(name, -1, device, mock);
    this.hostDevices.set(device, hostDevice);
    return hostDevice;
  }

  /** The host device (configured or selftest mock) of a hardware device. */
  hostDeviceOf(device: Device): HostDevice | undefined {
    return this.hostDevices.get(device);
  }

  /**
   * DMA from a configured device, translated by its IOMMU through whatever it
   * is attached to (a bound but unattached device is blocked). Undefined for
   * an unknown device or a write whose `data` is shorter than `length`.
   *
   * A page fault the hardware can recover from (a PRI page request, an
   * SMMUv3 stall) goes to the FAULT object of the attachment, and the
   * transfer waits: the outcome is 'page-request' and the transfer is in
   * {@link dmaLog} with state 'waiting'. When user space answers the group
   * SUCCESS (having mapped the page) the device retries and the bytes land,
   * or it stops again at a later page with a new request; INVALID aborts it.
   * {@link onDmaComplete} reports the end. A request nobody can take (no
   * FAULT object on the attachment) is refused at once, and the outcome is
   * then 'fault'.
   */
  deviceDma(nameOrPath: string, request: DmaRequest): DmaOutcome | undefined {
    const d = this.device(nameOrPath);
    if (d === undefined || typeof request !== 'object' || request === null) return undefined;
    const length = request.length ?? request.data?.length ?? 0;
    if (request.data !== undefined && request.data.length < length) return undefined;
    return this.iopf.runDma(d, request);
  }

  /** Every transfer that stopped for a page request, oldest first, with its state now. */
  get dmaLog(): readonly DmaTransfer[] {
    return this.iopf.transfers;
  }

  /** The transfers waiting for the answer to a page request, oldest first. */
  pendingDma(): DmaTransfer[] {
    return this.iopf.pending();
  }
}

/** Build a host. Throws an Error that names the problem when the configuration is inconsistent. */
export function createHost(config: HostConfig = {}): Host {
  return new Host(config);
}
