/**
 * Device models: what an IOMMU sees of a device. A PCI device is named by its
 * BDF and requests with a 16-bit requester id (RID); a platform device behind
 * an SMMU has one or more stream ids and may stall its transactions.
 */

/** How a device is described in a host configuration. */
export interface DeviceConfig {
  /** A PCI BDF such as '0000:01:00.0' (the RID comes from it), or any name for a platform device. */
  readonly name: string;
  /** PCI requester id (bus << 8 | dev << 3 | fn). Default: from a BDF name. */
  readonly rid?: number;
  /** Stream ids (SMMUv3). Default: [rid] for a PCI device; required for a platform device on an SMMU. */
  readonly streamIds?: readonly number[];
  /** PASID width in bits (0 = no PASID). Default 0. */
  readonly pasidBits?: number;
  /** Address Translation Services (a device TLB). Default false. */
  readonly ats?: boolean;
  /** Page Request Interface (recoverable faults from a PCI device). Default false. */
  readonly pri?: boolean;
  /** A platform device whose faulting transactions stall instead of aborting (SMMUv3). Default false. */
  readonly stall?: boolean;
}

/** The parts of a PCI bus/device/function address. */
export interface Bdf {
  readonly segment: number;
  readonly bus: number;
  readonly device: number;
  readonly fn: number;
}

const BDF = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([01][0-9a-fA-F])\.([0-7])$/;

/** Parse 'ssss:bb:dd.f' or 'bb:dd.f'; undefined when `name` is not a BDF. */
export function parseBdf(name: string): Bdf | undefined {
  const m = BDF.exec(name);
  if (m === null) return undefined;
  const device = Number.parseInt(m[3] as string, 16);
  if (device > 0x1f) return undefined;
  return {
    segment: Number.parseInt(m[1] ?? '0', 16),
    bus: Number.parseInt(m[2] as string, 16),
    device,
    fn: Number.parseInt(m[4] as string, 16),
  };
}

/** The requester id of a BDF: bus << 8 | device << 3 | function. */
export function bdfToRid(bdf: Bdf): number {
  return (bdf.bus << 8) | (bdf.device << 3) | bdf.fn;
}

/** A device as the IOMMU sees it. */
export class Device {
  /** Its name (a BDF for PCI devices). */
  readonly name: string;
  /** True for a PCI device (it has a RID and may have ATS, PRI and PASID). */
  readonly isPci: boolean;
  /** PCI requester id, or -1 for a platform device without one. */
  readonly rid: number;
  /** Stream ids (SMMUv3); for a PCI device, its RID unless configured. */
  readonly streamIds: readonly number[];
  /** PASID width in bits; 0 = the device cannot issue PASID-tagged requests. */
  readonly pasidBits: number;
  /** The device has a device TLB (ATS). */
  readonly ats: boolean;
  /** The device can issue page requests (PRI). */
  readonly pri: boolean;
  /** The device's transactions can stall on a fault (SMMUv3 platform devices). */
  readonly stall: boolean;

  constructor(config: DeviceConfig) {
    const bdf = parseBdf(config.name);
    this.name = config.name;
    this.isPci = bdf !== undefined || config.rid !== undefined;
    this.rid = config.rid ?? (bdf === undefined ? -1 : bdfToRid(bdf));
    if (this.isPci && !(Number.isInteger(this.rid) && this.rid >= 0 && this.rid <= 0xffff)) {
      throw new RangeError(`${config.name}: rid must be a 16-bit number, got ${this.rid}`);
    }
    this.streamIds = [...(config.streamIds ?? (this.isPci ? [this.rid] : []))];
    for (const sid of this.streamIds) {
      if (!(Number.isInteger(sid) && sid >= 0 && sid <= 0xffffffff)) {
        throw new RangeError(`${config.name}: stream id ${sid} is not a 32-bit number`);
      }
    }
    this.pasidBits = config.pasidBits ?? 0;
    if (!(Number.isInteger(this.pasidBits) && this.pasidBits >= 0 && this.pasidBits <= 20)) {
      throw new RangeError(`${config.name}: pasidBits must be in [0, 20]`);
    }
    this.ats = config.ats ?? false;
    this.pri = config.pri ?? false;
    this.stall = config.stall ?? false;
    if (!this.isPci && (this.ats || this.pri)) {
      throw new RangeError(
        `${config.name}: ATS and PRI are PCI capabilities; name the device by its BDF`,
      );
    }
    if (this.isPci && this.stall) {
      throw new RangeError(`${config.name}: stalling is for platform devices, PCI devices use PRI`);
    }
  }
}
