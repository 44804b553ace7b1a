/**
 * The DMA engine: a device reads or writes a buffer at an IOVA, and each page
 * of it is translated by the device's IOMMU through whatever the device is
 * attached to (blocked, bypass, paging, nested). Bytes move to or from
 * physical memory until a page faults; a recoverable fault (a PRI page
 * request, an SMMUv3 stall) leaves a ticket the device resumes with once the
 * request is answered with SUCCESS, as a real device retries.
 */
import type { Device } from './device.js';
import {
  type DmaContext,
  type HwFault,
  type IommuInstance,
  newDmaTranslation,
  type PageRequest,
} from './iommu/iommu.js';
import { type PhysicalMemory, toAddress } from './memory/physical-memory.js';
import {
  ACCESS_EXEC,
  ACCESS_PRIV,
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
} from './pagetable/format.js';

/** One DMA transfer a device issues. */
export interface DmaRequest {
  /** Input address. */
  readonly iova: number | bigint;
  /** Bytes to move (reads); for writes, the data's length when omitted. */
  readonly length?: number;
  /** Bytes to write; absent for a read. */
  readonly data?: Uint8Array;
  /** PASID the request carries; absent for none. */
  readonly pasid?: number;
  /** Stream id / RID to use (one of the device's). Default: its first. */
  readonly requester?: number;
  /** An instruction fetch. */
  readonly exec?: boolean;
  /** A privileged access. */
  readonly priv?: boolean;
}

/** Where a transfer stopped for a page request, to resume after the answer. */
export interface DmaTicket {
  readonly device: Device;
  readonly iommu: IommuInstance;
  readonly request: DmaRequest;
  /** Bytes already moved. */
  readonly done: number;
  /** Read data so far (reads). */
  readonly buffer: Uint8Array;
}

/** How a transfer ended. */
export type DmaOutcome =
  | {
      readonly status: 'done';
      /** Bytes moved. */
      readonly bytes: number;
      /** The bytes read (empty for a write). */
      readonly data: Uint8Array;
      /** Pages served by the IOTLB or a device TLB. */
      readonly cachedPages: number;
    }
  | {
      readonly status: 'fault';
      readonly bytes: number;
      readonly data: Uint8Array;
      readonly cachedPages: number;
      /** The unrecoverable fault that aborted the transfer. */
      readonly fault: HwFault;
    }
  | {
      readonly status: 'page-request';
      readonly bytes: number;
      readonly data: Uint8Array;
      readonly cachedPages: number;
      /** The fault behind the request. */
      readonly fault: HwFault;
      /** The request waiting for an answer. */
      readonly request: PageRequest;
      /** Pass to {@link DmaEngine.resume} after a SUCCESS response. */
      readonly ticket: DmaTicket;
    };

/** Moves bytes between devices and physical memory through their IOMMUs. */
export class DmaEngine {
  private readonly scratch = newDmaTranslation();

  constructor(
    /** Physical memory DMA reads and writes. */
    readonly memory: PhysicalMemory,
  ) {}

  /** Run a transfer from `device` behind `iommu`. */
  run(device: Device, iommu: IommuInstance, request: DmaRequest): DmaOutcome {
    const length = request.length ?? request.data?.length ?? 0;
    if (request.data !== undefined && request.data.length < length) {
      throw new RangeError(
        `write of ${length} bytes with only ${request.data.length} bytes of data`,
      );
    }
    const buffer = new Uint8Array(request.data === undefined ? length : 0);
    return this.transfer({ device, iommu, request, done: 0, buffer });
  }

  /** Continue a transfer that stopped for a page request answered with SUCCESS. */
  resume(ticket: DmaTicket): DmaOutcome {
    return this.transfer(ticket);
  }

  private transfer(ticket: DmaTicket): DmaOutcome {
    const { device, iommu, request, buffer } = ticket;
    const write = request.data !== undefined;
    const length = request.length ?? request.data?.length ?? 0;
    const base = toAddress(request.iova);
    const ctx: DmaContext = {
      device,
      requester: request.requester ?? device.streamIds[0] ?? device.rid,
      pasid: request.pasid ?? -1,
      access:
        (write ? ACCESS_WRITE : ACCESS_READ) |
        (request.exec === true ? ACCESS_EXEC : 0) |
        (request.priv === true ? ACCESS_PRIV : 0) |
        ACCESS_UPDATE_AD,
    };
    const t = this.scratch;
    let done = ticket.done;
    let cachedPages = 0;
    while (done < length) {
      const iova = base + done;
      if (!iommu.translateDma(ctx, iova, t)) {
        const fault = t.fault as HwFault;
        const data = write ? new Uint8Array(0) : buffer.subarray(0, done);
        if (t.pageRequest !== null) {
          return {
            status: 'page-request',
            bytes: done,
            data,
            cachedPages,
            fault,
            request: t.pageRequest,
            ticket: { device, iommu, request, done, buffer },
          };
        }
        return { status: 'fault', bytes: done, data, cachedPages, fault };
      }
      if (t.fromCache) cachedPages++;
      // Never cross a 4 KiB boundary in one step: the next page may translate elsewhere.
      const n = Math.min(length - done, Math.max(1, Math.min(t.contiguous, 4096 - (iova % 4096))));
      if (write) this.memory.write(t.pa, (request.data as Uint8Array).subarray(done, done + n));
      else this.memory.read(t.pa, n, buffer, done);
      done += n;
    }
    return { status: 'done', bytes: done, data: write ? new Uint8Array(0) : buffer, cachedPages };
  }
}
