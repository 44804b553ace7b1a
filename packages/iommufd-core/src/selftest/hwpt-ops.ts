/**
 * The IOMMU_TEST_CMD ops on HWPTs and attachments (selftest.c): DIRTY marks
 * mock IOPTEs dirty as device writes would, MD_CHECK_IOTLB reads a mock
 * nested domain's IOTLB word, TRIGGER_IOPF injects a page request, and
 * PASID_ATTACH / REPLACE / DETACH / CHECK_HWPT drive a mock device's PASID
 * attachments through the core.
 */
import {
  MockIommu,
  MockNestedDomain,
  MockPagingDomain,
  type PageRequest,
} from '@iommufd-sim/hw-models';
import {
  EFAULT,
  EINVAL,
  ENOENT,
  ENOMEM,
  IOMMU_TEST_OP_PASID_ATTACH,
  structs,
} from '@iommufd-sim/uapi-types';
import { asSelftestViommu } from '@iommufd-sim/viommu';
import type { DeviceObject } from '../device.js';
import type { Ucmd } from '../dispatch.js';
import { HwptNestedObject, type HwptObject, HwptPagingObject } from '../hw-pagetable.js';
import type { SelftestObject } from './test-cmd.js';

const T = structs.iommu_test_cmd.fields;

function at(name: keyof typeof T): number {
  return T[name].offset;
}

/** Largest DIRTY bitmap the model allocates (kvzalloc would fail well before). */
const DIRTY_BITMAP_MAX = 2 ** 31;

/** get_md_pagetable: a live paging HWPT (ENOENT) whose domain is a mock paging domain (EINVAL). */
function mockPaging(ucmd: Ucmd, id: number): MockPagingDomain | number {
  const hwpt = ucmd.ctx.objects.get(id, 'HWPT_PAGING') as HwptPagingObject | undefined;
  if (hwpt === undefined) return ucmd.fail(ENOENT, `there is no paging HWPT ${id}`);
  if (!(hwpt.domain instanceof MockPagingDomain)) {
    return ucmd.fail(EINVAL, `HWPT ${id} is not a mock domain`);
  }
  return hwpt.domain;
}

/** IOMMU_TEST_OP_DIRTY: mark the mock IOPTE of every set bit dirty; out_nr_dirty is how many. */
export function dirty(ucmd: Ucmd): number {
  const iova = ucmd.u64(at('dirty.iova'));
  const length = ucmd.u64(at('dirty.length'));
  const pageSize = ucmd.u64(at('dirty.page_size'));
  const uptr = ucmd.u64(at('dirty.uptr'));
  if (pageSize === 0n || length === 0n || iova % pageSize !== 0n || length % pageSize !== 0n) {
    return ucmd.fail(
      EINVAL,
      'page_size and length must be nonzero, and iova and length multiples of page_size',
    );
  }
  if (uptr === 0n) return ucmd.fail(EINVAL, 'uptr (the bitmap) is NULL');
  const domain = mockPaging(ucmd, ucmd.u32(at('id')));
  if (typeof domain === 'number') return domain;
  if (!domain.dirtyTracking) {
    return ucmd.fail(EINVAL, 'dirty tracking is off (IOMMU_HWPT_SET_DIRTY_TRACKING enables it)');
  }
  const units = length / pageSize;
  const bytes = (units + 7n) / 8n;
  if (bytes > BigInt(DIRTY_BITMAP_MAX)) {
    return ucmd.fail(ENOMEM, `a bitmap of ${bytes} bytes cannot be allocated`);
  }
  const bits = new Uint8Array(Number(bytes));
  if (!ucmd.proc.copyFromUser(uptr, bits)) {
    return ucmd.fail(EFAULT, `the bitmap at 0x${uptr.toString(16)} cannot be read`);
  }
  if (iova + length - 1n > BigInt(Number.MAX_SAFE_INTEGER)) {
    ucmd.setU64(at('dirty.out_nr_dirty'), 0n);
    return ucmd.respond();
  }
  const mock = domain.iommu as MockIommu;
  const n = mock.setDirty(domain, Number(iova), Number(length), Number(pageSize), bits);
  if (n < 0) return ucmd.fail(-n, 'the mock refused to mark pages dirty');
  ucmd.setU64(at('dirty.out_nr_dirty'), BigInt(n));
  return ucmd.respond();
}

/** IOMMU_TEST_OP_MD_CHECK_IOTLB: IOTLB word `check_iotlb.id` of a mock nested HWPT must be `check_iotlb.iotlb`. */
export function checkIotlb(ucmd: Ucmd): number {
  const id = ucmd.u32(at('id'));
  const hwpt = ucmd.ctx.objects.get(id, 'HWPT_NESTED') as HwptNestedObject | undefined;
  if (hwpt === undefined) return ucmd.fail(ENOENT, `there is no nested HWPT ${id}`);
  const domain = hwpt.domain;
  if (!(domain instanceof MockNestedDomain)) {
    return ucmd.fail(EINVAL, `HWPT ${id} is not a mock nested domain`);
  }
  const word = ucmd.u32(at('check_iotlb.id'));
  const value = ucmd.u32(at('check_iotlb.iotlb'));
  const mock = domain.iommu as MockIommu;
  if (mock.checkIotlb(domain, word, value) !== 0) {
    return ucmd.fail(
      EINVAL,
      word > 3
        ? `IOTLB word ${word} does not exist (0..3)`
        : `IOTLB word ${word} is 0x${(mock.iotlbWords(domain)?.[word] ?? 0).toString(16)}, not 0x${value.toString(16)}`,
    );
  }
  return 0;
}

/**
 * IOMMU_TEST_OP_TRIGGER_IOPF: one page request from the device, LAST_PAGE
 * always, PASID_VALID when pasid is not 0. 0 once the device is found,
 * whatever becomes of the request.
 */
export function triggerIopf(ucmd: Ucmd): number {
  const id = ucmd.u32(at('trigger_iopf.dev_id'));
  const idev = ucmd.ctx.objects.get(id, 'DEVICE') as DeviceObject | undefined;
  if (idev === undefined) return ucmd.fail(ENOENT, `there is no device ${id}`);
  const pasid = ucmd.u32(at('trigger_iopf.pasid'));
  const grpid = ucmd.u32(at('trigger_iopf.grpid'));
  const perm = ucmd.u32(at('trigger_iopf.perm'));
  const addr = Number(ucmd.u64(at('trigger_iopf.addr')));
  const { iommu, device } = idev.hostDevice;
  if (iommu instanceof MockIommu) {
    iommu.triggerIopf(device, { pasid, grpid, perm, addr });
    return 0;
  }
  // A device behind a modelled IOMMU: report the request the way its driver would.
  const request: PageRequest = {
    device,
    requester: device.streamIds[0] ?? device.rid,
    pasid: pasid !== 0 ? pasid : -1,
    groupId: grpid,
    lastPage: true,
    perm,
    address: addr,
    source: 'pri',
    record: new Uint8Array(0),
  };
  iommu.onPageRequest?.(request);
  return 0;
}

/** iommufd_test_get_selftest_obj, then its device. */
function stdevDevice(ucmd: Ucmd): DeviceObject | number {
  const id = ucmd.u32(at('id'));
  const sobj = ucmd.ctx.objects.get(id, 'SELFTEST') as SelftestObject | undefined;
  if (sobj === undefined || sobj.idev === null) {
    return ucmd.fail(ENOENT, `there is no selftest device object ${id}`);
  }
  return sobj.idev;
}

/** IOMMU_TEST_OP_PASID_ATTACH and PASID_REPLACE: pt_id is written back with the HWPT attached. */
export function pasidAttachOrReplace(ucmd: Ucmd, op: number): number {
  const idev = stdevDevice(ucmd);
  if (typeof idev === 'number') return idev;
  const pasid = ucmd.u32(at('pasid_attach.pasid'));
  const ptId = ucmd.u32(at('pasid_attach.pt_id'));
  const attach = op === IOMMU_TEST_OP_PASID_ATTACH;
  const got = attach ? idev.attach(ptId, pasid) : idev.replace(ptId, pasid);
  if ('errno' in got) return ucmd.fail(got.errno, got.reason);
  ucmd.setU32(at('pasid_attach.pt_id'), got.id);
  const rc = ucmd.respond();
  if (rc !== 0 && attach) idev.detach(pasid);
  return rc;
}

/** IOMMU_TEST_OP_PASID_DETACH: never fails for a valid selftest object. */
export function pasidDetach(ucmd: Ucmd): number {
  const idev = stdevDevice(ucmd);
  if (typeof idev === 'number') return idev;
  idev.detach(ucmd.u32(at('pasid_detach.pasid')));
  return 0;
}

/** IOMMU_TEST_OP_PASID_CHECK_HWPT: the PASID must be on hwpt_id's domain (hwpt_id 0: on nothing). */
export function pasidCheckHwpt(ucmd: Ucmd): number {
  const idev = stdevDevice(ucmd);
  if (typeof idev === 'number') return idev;
  const pasid = ucmd.u32(at('pasid_check.pasid'));
  const hwptId = ucmd.u32(at('pasid_check.hwpt_id'));
  const attached = idev.attachment(pasid);
  if (hwptId === 0) {
    return attached === null
      ? 0
      : ucmd.fail(EINVAL, `PASID ${pasid} is attached to HWPT ${attached.id}, not empty`);
  }
  const obj = ucmd.ctx.objects.get(hwptId);
  if (obj === undefined) return ucmd.fail(ENOENT, `there is no object ${hwptId}`);
  if (!(obj instanceof HwptPagingObject || obj instanceof HwptNestedObject)) {
    return ucmd.fail(EINVAL, `object ${hwptId} is a ${obj.type}, not a HWPT`);
  }
  const hwpt = obj as HwptObject;
  if (attached === null || attached.domain !== hwpt.domain) {
    return ucmd.fail(
      EINVAL,
      attached === null
        ? `PASID ${pasid} is not attached`
        : `PASID ${pasid} is attached to HWPT ${attached.id}, not ${hwptId}`,
    );
  }
  return 0;
}

/**
 * IOMMU_TEST_OP_TRIGGER_VEVENT: the mock device reports a selftest vEVENT
 * {virt_id} through the vIOMMU it was attached through (with the virt_id it
 * had then). ENOENT without such a binding; EOPNOTSUPP when the vIOMMU has
 * no vEVENTQ of type IOMMU_VEVENTQ_TYPE_SELFTEST; a full queue loses the
 * event and still answers 0.
 */
export function triggerVevent(ucmd: Ucmd): number {
  const id = ucmd.u32(at('trigger_vevent.dev_id'));
  const idev = ucmd.ctx.objects.get(id, 'DEVICE') as DeviceObject | undefined;
  if (idev === undefined) return ucmd.fail(ENOENT, `there is no device ${id}`);
  const { device, name } = idev.hostDevice;
  for (const v of ucmd.ctx.host.liveViommus) {
    const event = asSelftestViommu(v.driver)?.selftestEvent(device) ?? null;
    if (event === null) continue;
    const rc = v.report(event);
    if (rc === 0) return 0;
    return ucmd.fail(-rc, `vIOMMU ${v.id} has no vEVENTQ of type IOMMU_VEVENTQ_TYPE_SELFTEST`);
  }
  return ucmd.fail(
    ENOENT,
    `${name} is not attached to a nested HWPT of a selftest vIOMMU through a vDEVICE with a nonzero virt_id`,
  );
}
