/**
 * The vDEVICE table of one vIOMMU (the kernel's `viommu->vdevs` xarray):
 * virt_id → device, where virt_id is whatever the guest calls the device
 * (vSID on SMMUv3, vDeviceID on AMD, vRID on VT-d). A virt_id is used once
 * per vIOMMU (EEXIST). The reverse lookup (device → virt_id) is what event
 * reporting and the attach of a vIOMMU-nested domain use.
 *
 * The multi-SID extension (off by default) lets one vDEVICE carry more
 * virtual stream ids, endpoint i ≥ 1 mapping one to one onto the device's
 * i-th physical stream id; every vSID of a vIOMMU is unique, whichever
 * endpoint it names.
 */

/** One virtual endpoint of a vDEVICE: the guest's stream id and the physical one behind it. */
export interface VirtualEndpoint {
  /** Endpoint index (0 is the vDEVICE's own virt_id). */
  readonly index: number;
  /** The guest's id for it. */
  readonly virtId: bigint;
}

/** One vDEVICE entry. */
export class VdeviceEntry<D> {
  /** Endpoints beyond the first, by index (multi-SID extension). */
  readonly extra = new Map<number, bigint>();

  constructor(
    /** The device. */
    readonly device: D,
    /** Its virt_id (endpoint 0). */
    readonly virtId: bigint,
  ) {}

  /** Every endpoint with a virtual id, endpoint 0 first. */
  endpoints(): VirtualEndpoint[] {
    const out: VirtualEndpoint[] = [{ index: 0, virtId: this.virtId }];
    for (const [index, virtId] of [...this.extra].sort((a, b) => a[0] - b[0])) {
      out.push({ index, virtId });
    }
    return out;
  }
}

/** A lookup by virtual id: the entry and which of its endpoints the id names. */
export interface VirtualIdHit<D> {
  readonly entry: VdeviceEntry<D>;
  readonly endpoint: number;
}

/** The vDEVICEs of one vIOMMU. */
export class VdeviceTable<D> {
  private readonly byVirtId = new Map<bigint, VirtualIdHit<D>>();
  private readonly byDevice = new Map<D, VdeviceEntry<D>>();

  /** Number of vDEVICEs. */
  get size(): number {
    return this.byDevice.size;
  }

  /** xa_cmpxchg(vdevs, virt_id, NULL, vdev): the new entry, or 'taken' when the id is in use. */
  insert(device: D, virtId: bigint): VdeviceEntry<D> | 'taken' {
    if (this.byVirtId.has(virtId)) return 'taken';
    const entry = new VdeviceEntry(device, virtId);
    this.byVirtId.set(virtId, { entry, endpoint: 0 });
    this.byDevice.set(device, entry);
    return entry;
  }

  /** Remove a vDEVICE and every virtual id it holds. */
  remove(entry: VdeviceEntry<D>): void {
    if (this.byDevice.get(entry.device) !== entry) return;
    this.byDevice.delete(entry.device);
    this.byVirtId.delete(entry.virtId);
    for (const id of entry.extra.values()) this.byVirtId.delete(id);
    entry.extra.clear();
  }

  /** iommufd_viommu_find_dev: who answers to `virtId`, and through which endpoint. */
  find(virtId: bigint): VirtualIdHit<D> | undefined {
    return this.byVirtId.get(virtId);
  }

  /** iommufd_viommu_get_vdev_id: the vDEVICE of `device`, if it has one here. */
  ofDevice(device: D): VdeviceEntry<D> | undefined {
    return this.byDevice.get(device);
  }

  /**
   * Multi-SID extension: give endpoint `index` (≥ 1) of `entry` the virtual
   * id `virtId`, replacing what it had. 'taken' when another endpoint of this
   * vIOMMU already answers to `virtId`.
   */
  setEndpoint(entry: VdeviceEntry<D>, index: number, virtId: bigint): 'ok' | 'taken' {
    const hit = this.byVirtId.get(virtId);
    if (hit !== undefined && !(hit.entry === entry && hit.endpoint === index)) return 'taken';
    const old = entry.extra.get(index);
    if (old !== undefined) this.byVirtId.delete(old);
    entry.extra.set(index, virtId);
    this.byVirtId.set(virtId, { entry, endpoint: index });
    return 'ok';
  }

  /** Every entry, in virt_id order. */
  entries(): VdeviceEntry<D>[] {
    return [...this.byDevice.values()].sort((a, b) =>
      a.virtId < b.virtId ? -1 : a.virtId > b.virtId ? 1 : 0,
    );
  }
}
