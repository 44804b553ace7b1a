/**
 * I/O page faults from the hardware models to FAULT objects, and the device
 * transfers that wait for them (io-pgfault.c's iommu_report_device_fault
 * plus the device side).
 *
 * Every IOMMU of the host (and the selftest mock IOMMU) reports its page
 * requests here. A request is routed as 6.17 does (find_fault_handler):
 * with a PASID, to the attachment of that PASID, or, when there is none and
 * the driver keeps PASID tables in user space (SMMUv3 and the mock; not VT-d
 * or AMD), to the RID's attachment if that is a nested HWPT; without a PASID,
 * to the RID's attachment. No attachment, or one whose HWPT has no FAULT
 * object, answers the request INVALID at once and user space never sees it.
 * Requests without LAST_PAGE wait on the device's partial list until the
 * LAST_PAGE request of their group arrives; the whole group then goes to the
 * FAULT object of the HWPT the last request was routed to.
 *
 * When a group is answered, the LAST_PAGE hardware request is completed
 * (`completePageRequest`). A transfer from {@link Host.deviceDma} that stopped
 * for that request resumes on SUCCESS (it may stop again on a later page) and
 * is aborted otherwise.
 */
import type { IopfRequest } from '@iommufd-sim/fault-queue';
import type {
  Device,
  DmaOutcome,
  DmaRequest,
  DmaTicket,
  IommuInstance,
  PageRequest,
  PageResponseCode,
} from '@iommufd-sim/hw-models';
import {
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
} from '@iommufd-sim/uapi-types';
import { type DeviceObject, IOMMU_NO_PASID } from './device.js';
import type { FaultRoute } from './fault.js';
import type { Host, HostDevice } from './host.js';
import type { HwptObject } from './hw-pagetable.js';

/** Where a device transfer stands. */
export type DmaTransferState = 'waiting' | 'done' | 'fault' | 'aborted';

/**
 * A device transfer that stopped for a page request, followed to its end:
 * 'waiting' while its request is unanswered; 'done' once a retry moved every
 * byte; 'fault' when a retry met a fault that cannot be recovered; 'aborted'
 * when the request was answered INVALID (or FAILURE).
 */
export interface DmaTransfer {
  /** Its number, from 1 in the order transfers first stopped. */
  readonly id: number;
  /** The device's name. */
  readonly device: string;
  /** The transfer as it was issued. */
  readonly request: DmaRequest;
  /** Where it stands. */
  readonly state: DmaTransferState;
  /**
   * The latest outcome: 'page-request' while waiting, 'done' when finished,
   * 'fault' when it failed or was aborted (bytes: what was moved before).
   */
  readonly outcome: DmaOutcome;
  /** Page requests it raised so far (one per retry that faulted again). */
  readonly pageRequests: number;
}

/** What the router counted. */
export interface IopfStats {
  /** Page requests the IOMMUs reported. */
  readonly reported: number;
  /** Groups handed to FAULT objects. */
  readonly groupsDelivered: number;
  /** Requests answered INVALID at once: no attachment, or its HWPT has no FAULT object. */
  readonly answeredWithoutHandler: number;
  /** Hardware requests completed, by code. */
  readonly completed: {
    readonly success: number;
    readonly invalid: number;
    readonly failure: number;
  };
}

interface Transfer extends DmaTransfer {
  id: number;
  state: DmaTransferState;
  outcome: DmaOutcome;
  pageRequests: number;
}

type PageRequestOutcome = Extract<DmaOutcome, { status: 'page-request' }>;

/** The driver keeps PASID tables in user space (iommu_ops.user_pasid_table in 6.17). */
function userPasidTable(iommu: IommuInstance): boolean {
  return iommu.model === 'smmuv3' || iommu.model === 'mock';
}

/** The record fields of a hardware request (the kernel's iommu_fault_page_request). */
function recordOf(request: PageRequest): IopfRequest {
  const pasid = request.pasid >= 0 ? request.pasid >>> 0 : 0;
  const address = request.address;
  return {
    flags:
      (request.pasid >= 0 ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0) |
      (request.lastPage ? IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0),
    pasid,
    grpid: request.groupId >>> 0,
    perm: request.perm >>> 0,
    addr: Number.isInteger(address) && address >= 0 && address < 2 ** 64 ? BigInt(address) : 0n,
  };
}

/** aborted / fault: the outcome of a transfer that stopped for a request that was refused. */
function abortedOutcome(o: PageRequestOutcome): DmaOutcome {
  return {
    status: 'fault',
    bytes: o.bytes,
    data: o.data,
    cachedPages: o.cachedPages,
    fault: o.fault,
  };
}

/** The host's IOPF path: routing, delivery, completion and the transfers waiting on it. */
export class IopfRouter {
  /** Transfers that stopped for a page request, oldest first (they stay after they end). */
  readonly transfers: DmaTransfer[] = [];
  private readonly partial = new Map<Device, IopfRequest[]>();
  private readonly waiting = new Map<PageRequest, { transfer: Transfer; ticket: DmaTicket }>();
  // Answers given while a transfer is running, before its outcome names the request.
  private readonly early = new Map<PageRequest, PageResponseCode>();
  private running = 0;
  private counts = {
    reported: 0,
    groupsDelivered: 0,
    answeredWithoutHandler: 0,
    completed: { success: 0, invalid: 0, failure: 0 },
  };

  constructor(private readonly host: Host) {}

  /** Take the page requests of `iommu` (its onPageRequest hook). */
  install(iommu: IommuInstance): void {
    iommu.onPageRequest = (request) => this.report(iommu, request);
  }

  /** iommu_report_device_fault: route one page request (never throws). */
  report(iommu: IommuInstance, request: PageRequest): void {
    try {
      this.counts.reported++;
      const route = this.route(iommu, request);
      if (route === null) {
        this.counts.answeredWithoutHandler++;
        this.answer(iommu, request, 'invalid');
        return;
      }
      const record = recordOf(request);
      if (!request.lastPage) {
        let list = this.partial.get(request.device);
        if (list === undefined) {
          list = [];
          this.partial.set(request.device, list);
        }
        list.push(record);
        return;
      }
      const group: IopfRequest[] = [];
      const list = this.partial.get(request.device);
      if (list !== undefined) {
        const rest = list.filter((r) => r.grpid !== record.grpid);
        for (const r of list) if (r.grpid === record.grpid) group.push(r);
        if (rest.length === 0) this.partial.delete(request.device);
        else this.partial.set(request.device, rest);
      }
      group.push(record);
      const fault = route.hwpt.fault;
      if (fault === null || fault.deliver(route, group) !== 0) {
        // The group cannot be queued: the kernel aborts it with FAILURE.
        this.answer(iommu, request, 'failure');
        return;
      }
      this.counts.groupsDelivered++;
    } catch {
      // A bug in the model: count it (tests require 0) and do not leave the device hanging.
      this.host.internalErrors++;
      try {
        iommu.completePageRequest(request, 'failure');
      } catch {
        this.host.internalErrors++;
      }
    }
  }

  /**
   * iopf_group_response: complete `request` at the hardware with `code`, and
   * resume (SUCCESS) or abort the transfer waiting for it.
   */
  answer(iommu: IommuInstance, request: PageRequest, code: PageResponseCode): void {
    this.counts.completed[code]++;
    iommu.completePageRequest(request, code);
    const waiting = this.waiting.get(request);
    if (waiting !== undefined) {
      this.waiting.delete(request);
      this.inDma(() => this.continueTransfer(waiting.transfer, waiting.ticket, code));
    } else if (this.running > 0) {
      this.early.set(request, code);
    }
  }

  /**
   * A device lost an attachment to a fault-capable HWPT: when none is left
   * it leaves the IOPF queue and its partial requests are dropped (no
   * response, as iopf_queue_remove_device does).
   */
  deviceLeaving(idev: DeviceObject): void {
    for (const hwpt of idev.attachments.values()) if (hwpt.fault !== null) return;
    this.partial.delete(idev.hostDevice.device);
  }

  /** Run a transfer of `device`; see {@link Host.deviceDma}. */
  runDma(device: HostDevice, request: DmaRequest): DmaOutcome {
    // The common case (no page request) allocates nothing beyond the engine's outcome.
    this.running++;
    try {
      const outcome = this.host.dma.run(device.device, device.iommu, request);
      if (outcome.status !== 'page-request') return outcome;
      const transfer: Transfer = {
        id: 0,
        device: device.name,
        request,
        state: 'waiting',
        outcome,
        pageRequests: 0,
      };
      return this.settle(transfer, outcome);
    } finally {
      this.leaveDma();
    }
  }

  /** Transfers still waiting for an answer, oldest first. */
  pending(): DmaTransfer[] {
    return [...this.waiting.values()].map((w) => w.transfer).sort((a, b) => a.id - b.id);
  }

  /** The counters. */
  stats(): IopfStats {
    return { ...this.counts, completed: { ...this.counts.completed } };
  }

  // find_fault_handler: the attachment a request goes to, if it has a FAULT object.
  private route(
    iommu: IommuInstance,
    request: PageRequest,
  ): (FaultRoute & { readonly hwpt: HwptObject }) | null {
    const idev = this.host.hostDeviceOf(request.device)?.boundTo ?? null;
    if (idev === null) return null;
    let slot = IOMMU_NO_PASID;
    let hwpt: HwptObject | null;
    if (request.pasid >= 0) {
      slot = request.pasid;
      hwpt = idev.attachment(slot);
      if (hwpt === null && userPasidTable(iommu)) {
        const rid = idev.attachment(IOMMU_NO_PASID);
        if (rid !== null && rid.type === 'HWPT_NESTED') {
          slot = IOMMU_NO_PASID;
          hwpt = rid;
        }
      }
    } else {
      hwpt = idev.attachment(IOMMU_NO_PASID);
    }
    if (hwpt === null || hwpt.fault === null) return null;
    return { idev, slot, iommu, request, hwpt };
  }

  // Follow a transfer until it finishes or waits for an answer nobody has given yet.
  private settle(transfer: Transfer, first: DmaOutcome): DmaOutcome {
    let outcome = first;
    for (;;) {
      transfer.outcome = outcome;
      if (outcome.status !== 'page-request') {
        transfer.state = outcome.status;
        return outcome;
      }
      transfer.pageRequests++;
      if (transfer.id === 0) {
        this.transfers.push(transfer);
        transfer.id = this.transfers.length;
      }
      const early = this.early.get(outcome.request);
      this.early.delete(outcome.request);
      if (early === undefined) {
        transfer.state = 'waiting';
        this.waiting.set(outcome.request, { transfer, ticket: outcome.ticket });
        return outcome;
      }
      if (early !== 'success') {
        transfer.state = 'aborted';
        transfer.outcome = abortedOutcome(outcome);
        return transfer.outcome;
      }
      outcome = this.host.dma.resume(outcome.ticket);
    }
  }

  private continueTransfer(transfer: Transfer, ticket: DmaTicket, code: PageResponseCode): void {
    const stopped = transfer.outcome;
    if (code === 'success') {
      this.settle(transfer, this.host.dma.resume(ticket));
    } else {
      transfer.state = 'aborted';
      if (stopped.status === 'page-request') transfer.outcome = abortedOutcome(stopped);
    }
    if (transfer.state !== 'waiting') this.host.onDmaComplete?.(transfer);
  }

  // While a transfer runs, answers to requests it raised are kept until its outcome names them.
  private inDma(run: () => void): void {
    this.running++;
    try {
      run();
    } finally {
      this.leaveDma();
    }
  }

  private leaveDma(): void {
    this.running--;
    if (this.running === 0 && this.early.size > 0) this.early.clear();
  }
}
