/**
 * End to end through an ARM SMMUv3 vIOMMU (kernel-semantics.md 2.18 and
 * sections 4-5; hw-formats.md 2.3, 2.4, 2.6, 2.7): a PCI device bound
 * through the VFIO cdev, guest RAM mapped into an IOAS (GPA = IOVA), a
 * NEST_PARENT HWPT, IOMMU_VIOMMU_ALLOC(ARM_SMMUV3), a vDEVICE carrying the
 * guest's vSID, and a guest CD table and stage-1 page table built by hand in
 * process memory at GPAs. The nested HWPT comes from the guest's vSTE
 * (IOMMU_HWPT_DATA_ARM_SMMUV3) allocated on the vIOMMU. The device's DMA is
 * translated through both stages into process memory; guest table changes
 * stay invisible until the guest's own commands go through
 * IOMMU_HWPT_INVALIDATE on the vIOMMU; stage-1 faults reach a vEVENTQ with
 * the vSID, stage-2 faults do not; a small queue loses events with a
 * LOST_EVENTS marker; and the vSTE is validated as arm_smmu_validate_vste.
 */
import {
  SMMU_CD,
  SMMU_EVENT_ID,
  SMMU_STE,
  SMMU_STE_CONFIG,
  type Smmuv3Iommu,
} from '@iommufd-sim/hw-models';
import {
  EBUSY,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  EOPNOTSUPP,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type Process } from '../src/index.js';
import { destroy, ioasAlloc, map, PAGE } from './helpers.js';
import { objectsOf, pattern, vfioAttach, vfioBind, vfioDetach } from './helpers-c.js';

// ---- the host ------------------------------------------------------------------------------

const NIC = '0000:00:10.0'; // RID 0x80 = its physical StreamID
const NIC_PSID = 0x80;
const NIC_VSID = 0x21; // the guest's StreamID for it
const GPU = '0000:00:11.0'; // RID 0x88
const GPU_PSID = 0x88;
const GPU_VSID = 0x22;

// Guest memory plan (GPAs; GPA = IOVA of the IOAS the nest parent maps):
// RAM 0 .. 2 MiB; the CD table (one CD, S1Fmt 0, S1CDMax 0) at 0x1000; a 4-level
// 4K stage-1 table L0 0x2000 -> L1 0x3000 -> L2 0x4000 -> L3 0x5000 (T0SZ 16);
// GVA 0x40000000 (L0[0] L1[1] L2[0] L3[0]) -> PAGE_A, later PAGE_B; GVA + PAGE
// (L3[1]) -> GPA 4 MiB, which stage 2 does not map; GVA + 2 MiB (L2[1]) unmapped.
// A second table L0' 0x6000 -> L1' 0x7000 -> L2' 0x8000 -> L3' 0x9000 maps GVA -> PAGE_C.
const GUEST_RAM = 2n << 20n;
const CD_TABLE = 0x1000n;
const L0 = 0x2000n;
const L1 = 0x3000n;
const L2 = 0x4000n;
const L3 = 0x5000n;
const L0_ALT = 0x6000n;
const L1_ALT = 0x7000n;
const L2_ALT = 0x8000n;
const L3_ALT = 0x9000n;
const PAGE_A = 0x10000n;
const PAGE_B = 0x11000n;
const PAGE_C = 0x12000n;
const OUTSIDE_RAM = 0x400000n;
const GVA = 0x40000000n;
const GVA_S2_HOLE = GVA + PAGE;
const GVA_UNMAPPED = GVA + 0x200000n;
const ASID = 7;
const ASID_ALT = 9;

/** Table descriptor: valid | table. */
const TABLE = 3n;
/** Stage-1 page: valid | page, AttrIndx 1 (WB), AP[1] (EL0 access), SH inner, AF, nG. */
const LEAF = 3n | (1n << 2n) | (1n << 6n) | (3n << 8n) | (1n << 10n) | (1n << 11n);

const VSTE_S1 = (cdGpa: bigint) => 1n | (BigInt(SMMU_STE_CONFIG.S1_TRANS) << 1n) | cdGpa;

/** Opcodes of the guest commands used here (hw-formats.md 2.6). */
const OP = {
  CFGI_STE: 0x03,
  CFGI_CD: 0x05,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NSNH_ALL: 0x30,
  CMD_SYNC: 0x46,
} as const;

type Cmd = readonly [bigint, bigint];

const tlbiNhVa = (asid: number, va: bigint, vmid = 0xbeef): Cmd => [
  BigInt(OP.TLBI_NH_VA) | (BigInt(vmid) << 32n) | (BigInt(asid) << 48n),
  va | 1n, // Leaf, TG 0: the one page
];
const tlbiNhAsid = (asid: number, vmid = 0xbeef): Cmd => [
  BigInt(OP.TLBI_NH_ASID) | (BigInt(vmid) << 32n) | (BigInt(asid) << 48n),
  0n,
];
const tlbiNsnhAll: Cmd = [BigInt(OP.TLBI_NSNH_ALL), 0n];
const cfgiCd = (vsid: number, ssid = 0): Cmd => [
  BigInt(OP.CFGI_CD) | (BigInt(ssid) << 12n) | (BigInt(vsid) << 32n),
  1n,
];
const cmdSync: Cmd = [BigInt(OP.CMD_SYNC), 0n];

function le64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function words(bytes: Uint8Array, count: number): bigint[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, count * 8);
  return Array.from({ length: count }, (_, i) => v.getBigUint64(i * 8, true));
}

// ---- ioctls as struct bytes ------------------------------------------------------------

type HwptAllocFields = Partial<ReturnType<typeof structs.iommu_hwpt_alloc.decode>>;

function hwptAlloc(proc: Process, fd: number, fields: HwptAllocFields): { rc: number; id: number } {
  const b = structs.iommu_hwpt_alloc.encode({ size: structs.iommu_hwpt_alloc.sizeof, ...fields });
  const rc = proc.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return { rc, id: structs.iommu_hwpt_alloc.decode(b).out_hwpt_id };
}

function viommuAlloc(proc: Process, fd: number, devId: number, hwptId: number) {
  const b = structs.iommu_viommu_alloc.encode({
    size: structs.iommu_viommu_alloc.sizeof,
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: devId,
    hwpt_id: hwptId,
  });
  const rc = proc.ioctl(fd, IOMMU_VIOMMU_ALLOC, b);
  return { rc, id: structs.iommu_viommu_alloc.decode(b).out_viommu_id };
}

function vdeviceAlloc(proc: Process, fd: number, viommuId: number, devId: number, virtId: number) {
  const b = structs.iommu_vdevice_alloc.encode({
    size: structs.iommu_vdevice_alloc.sizeof,
    viommu_id: viommuId,
    dev_id: devId,
    virt_id: BigInt(virtId),
  });
  const rc = proc.ioctl(fd, IOMMU_VDEVICE_ALLOC, b);
  return { rc, id: structs.iommu_vdevice_alloc.decode(b).out_vdevice_id };
}

function veventqAlloc(proc: Process, fd: number, viommuId: number, depth: number) {
  const b = structs.iommu_veventq_alloc.encode({
    size: structs.iommu_veventq_alloc.sizeof,
    viommu_id: viommuId,
    type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    veventq_depth: depth,
  });
  const rc = proc.ioctl(fd, IOMMU_VEVENTQ_ALLOC, b);
  const out = structs.iommu_veventq_alloc.decode(b);
  return { rc, id: out.out_veventq_id, qfd: out.out_veventq_fd };
}

/** The guest's commands through IOMMU_HWPT_INVALIDATE on the vIOMMU; rc and entry_num. */
function guestInvalidate(
  proc: Process,
  fd: number,
  viommuId: number,
  cmds: readonly Cmd[],
): { rc: number; entryNum: number } {
  const entries = proc.mmap(PAGE);
  cmds.forEach(([w0, w1], i) => {
    const e = structs.iommu_viommu_arm_smmuv3_invalidate.encode({ cmd: [w0, w1] });
    expect(proc.writeMemory(entries + BigInt(i * 16), e)).toBe(0);
  });
  const b = structs.iommu_hwpt_invalidate.encode({
    size: structs.iommu_hwpt_invalidate.sizeof,
    hwpt_id: viommuId,
    data_uptr: entries,
    data_type: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
    entry_len: 16,
    entry_num: cmds.length,
  });
  const rc = proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, b);
  expect(proc.munmap(entries, PAGE)).toBe(0);
  return { rc, entryNum: structs.iommu_hwpt_invalidate.decode(b).entry_num };
}

/** One vEVENT as read: its header and (absent for a LOST_EVENTS marker) the 4 event words. */
interface VeventRead {
  flags: number;
  sequence: number;
  evt?: bigint[];
}

/** read() the vEVENTQ fd with room for `max` SMMUv3 events; the items it returned. */
function readVevents(proc: Process, qfd: number, max = 8): { rc: number; items: VeventRead[] } {
  const buf = new Uint8Array(max * 40);
  const rc = proc.read(qfd, buf);
  const items: VeventRead[] = [];
  let at = 0;
  while (at < rc) {
    const h = structs.iommufd_vevent_header.decode(buf, at);
    at += 8;
    if ((h.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0) {
      items.push({ flags: h.flags, sequence: h.sequence });
      continue;
    }
    const e = structs.iommu_vevent_arm_smmuv3.decode(buf, at);
    at += 32;
    items.push({ flags: h.flags, sequence: h.sequence, evt: [...e.evt] });
  }
  return { rc, items };
}

// ---- the fixture ---------------------------------------------------------------------------

/**
 * A host with one SMMUv3 (stage 2 on) and two PCI devices, the NIC bound
 * through VFIO; guest RAM mapped at GPA 0 with the guest's CD and stage-1
 * tables written; a NEST_PARENT HWPT and an ARM_SMMUV3 vIOMMU on it.
 */
function boot() {
  const host = createHost({
    iommus: [{ name: 'smmu0', model: 'smmuv3' }],
    devices: [
      { name: NIC, iommu: 'smmu0' },
      { name: GPU, iommu: 'smmu0' },
    ],
  });
  const smmu = host.iommus.get('smmu0') as Smmuv3Iommu;
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const dev = proc.open(host.device(NIC)?.path ?? '');
  expect(dev).toBeGreaterThanOrEqual(3);
  const bound = vfioBind(proc, dev, fd);
  expect(bound.rc).toBe(0);
  const ioas = ioasAlloc(proc, fd);
  const ram = proc.mmap(GUEST_RAM);
  expect(map(proc, fd, ioas, ram, GUEST_RAM, 0n).rc).toBe(0);
  const put = (gpa: bigint, v: bigint) => expect(proc.writeMemory(ram + gpa, le64(v))).toBe(0);
  const writeCd = (ttb0: bigint, asid: number) => {
    const cd = SMMU_CD.encode({
      T0SZ: 16,
      TG0: 0,
      IR0: 1,
      OR0: 1,
      SH0: 3,
      EPD1: 1,
      V: 1,
      IPS: 5,
      AA64: 1,
      R: 1,
      A: 1,
      ASET: 1,
      ASID: asid,
      TTB0: Number(ttb0),
      MAIR_LO: 0xf404ff44,
    });
    cd.forEach((w, i) => {
      put(CD_TABLE + BigInt(i * 8), w);
    });
  };
  writeCd(L0, ASID);
  put(L0, L1 | TABLE);
  put(L1 + 8n, L2 | TABLE);
  put(L2, L3 | TABLE);
  put(L3, PAGE_A | LEAF);
  put(L3 + 8n, OUTSIDE_RAM | LEAF);
  put(L0_ALT, L1_ALT | TABLE);
  put(L1_ALT + 8n, L2_ALT | TABLE);
  put(L2_ALT, L3_ALT | TABLE);
  put(L3_ALT, PAGE_C | LEAF);
  for (const [page, seed] of [
    [PAGE_A, 1],
    [PAGE_B, 2],
    [PAGE_C, 3],
  ] as const) {
    expect(proc.writeMemory(ram + page, pattern(4096, seed))).toBe(0);
  }
  const parent = hwptAlloc(proc, fd, {
    dev_id: bound.devid,
    pt_id: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  expect(parent.rc).toBe(0);
  const viommu = viommuAlloc(proc, fd, bound.devid, parent.id);
  expect(viommu.rc, proc.lastError()?.reason).toBe(0);
  const vsteBuf = proc.mmap(PAGE);
  /** The guest's vSTE as IOMMU_HWPT_ALLOC data (data_len 16 unless `len`). */
  const vsteFields = (ste0: bigint, ste1 = 0n, more: HwptAllocFields = {}): HwptAllocFields => {
    expect(
      proc.writeMemory(vsteBuf, structs.iommu_hwpt_arm_smmuv3.encode({ ste: [ste0, ste1] })),
    ).toBe(0);
    return {
      dev_id: bound.devid,
      pt_id: viommu.id,
      data_type: IOMMU_HWPT_DATA_ARM_SMMUV3,
      data_len: 16,
      data_uptr: vsteBuf,
      ...more,
    };
  };
  return {
    host,
    smmu,
    proc,
    fd,
    dev,
    devid: bound.devid,
    ioas,
    ram,
    put,
    writeCd,
    parent: parent.id,
    viommu: viommu.id,
    vsteFields,
  };
}

type Booted = ReturnType<typeof boot>;

/** boot, then the guest's S1 vSTE as a nested HWPT, the NIC's vDEVICE, and the attach. */
function bootAttached() {
  const b = boot();
  const nested = hwptAlloc(b.proc, b.fd, b.vsteFields(VSTE_S1(CD_TABLE)));
  expect(nested.rc, b.proc.lastError()?.reason).toBe(0);
  const vdev = vdeviceAlloc(b.proc, b.fd, b.viommu, b.devid, NIC_VSID);
  expect(vdev.rc).toBe(0);
  expect(vfioAttach(b.proc, b.dev, nested.id)).toEqual({ rc: 0, ptId: nested.id });
  return { ...b, nested: nested.id, vdevice: vdev.id };
}

/** A DMA read of `length` bytes at `iova` by `device`; throws when it does not complete. */
function dmaRead(host: Host, iova: bigint, length = 64, device = NIC): Uint8Array {
  const r = host.deviceDma(device, { iova, length });
  if (r?.status !== 'done') {
    throw new Error(
      `DMA read at 0x${iova.toString(16)}: ${r?.status} ${r !== undefined && 'fault' in r ? r.fault.reason : ''}`,
    );
  }
  return r.data;
}

/** The parent's VMID as the hardware has it: S2VMID of the NIC's installed STE. */
function installedSte(smmu: Smmuv3Iommu, sid: number) {
  return SMMU_STE.decode(smmu.streamTable.readSte(sid));
}

function teardown(b: Booted): void {
  expect(b.proc.close(b.dev)).toBe(0);
  expect(b.proc.close(b.fd)).toBe(0);
  expect(b.host.pinnedPages()).toBe(0);
  expect(b.host.internalErrors).toBe(0);
}

// ---- the tests -----------------------------------------------------------------------------

describe('vIOMMU end to end on SMMUv3: a guest stage-1 table through the nested HWPT', () => {
  it('attach to the vIOMMU-nested HWPT is ENOENT until the vDEVICE exists (182), then 0; the installed STE is the nested one with the guest CD table IPA and the parent VMID', () => {
    const b = boot();
    const nested = hwptAlloc(b.proc, b.fd, b.vsteFields(VSTE_S1(CD_TABLE)));
    expect(nested.rc).toBe(0);
    expect(objectsOf(b.proc, b.fd)).toContain(`${nested.id}:HWPT_NESTED`);
    const before = objectsOf(b.proc, b.fd);
    expect(vfioAttach(b.proc, b.dev, nested.id).rc).toBe(-ENOENT);
    expect(b.proc.lastError()?.reason).toMatch(/vDEVICE/);
    expect(objectsOf(b.proc, b.fd)).toEqual(before);
    // Still blocked: the device has no translation.
    expect(b.host.deviceDma(NIC, { iova: GVA, length: 4 })?.status).toBe('fault');
    expect(installedSte(b.smmu, NIC_PSID).Config).toBe(SMMU_STE_CONFIG.ABORT);

    const vdev = vdeviceAlloc(b.proc, b.fd, b.viommu, b.devid, NIC_VSID);
    expect(vdev.rc).toBe(0);
    expect(vfioAttach(b.proc, b.dev, nested.id)).toEqual({ rc: 0, ptId: nested.id });
    const ste = installedSte(b.smmu, NIC_PSID);
    expect(ste).toMatchObject({
      V: 1,
      Config: SMMU_STE_CONFIG.NESTED,
      S1ContextPtr: Number(CD_TABLE),
      S1CDMax: 0,
      MEV: 1,
    });
    expect(ste.S2VMID).toBeGreaterThan(0);

    // The device's vDEVICE holds the vIOMMU; the nested HWPT is busy while attached.
    expect(destroy(b.proc, b.fd, b.viommu)).toBe(-EBUSY);
    expect(destroy(b.proc, b.fd, nested.id)).toBe(-EBUSY);
    // Detach, then tear down in the kernel's order.
    expect(vfioDetach(b.proc, b.dev)).toBe(0);
    expect(destroy(b.proc, b.fd, vdev.id)).toBe(0);
    expect(destroy(b.proc, b.fd, nested.id)).toBe(0);
    expect(destroy(b.proc, b.fd, b.viommu)).toBe(0);
    expect(destroy(b.proc, b.fd, b.parent)).toBe(0);
    teardown(b);
  });

  it('a second device without a vDEVICE cannot attach to a nested HWPT of the vIOMMU (ENOENT), and can once it has one', () => {
    const b = boot();
    const gpuDev = b.proc.open(b.host.device(GPU)?.path ?? '');
    const gpu = vfioBind(b.proc, gpuDev, b.fd);
    expect(gpu.rc).toBe(0);
    const nested = hwptAlloc(b.proc, b.fd, {
      ...b.vsteFields(VSTE_S1(CD_TABLE)),
      dev_id: gpu.devid,
    });
    expect(nested.rc).toBe(0);
    // The NIC's vDEVICE does not help the GPU.
    expect(vdeviceAlloc(b.proc, b.fd, b.viommu, b.devid, NIC_VSID).rc).toBe(0);
    expect(vfioAttach(b.proc, gpuDev, nested.id).rc).toBe(-ENOENT);
    expect(vdeviceAlloc(b.proc, b.fd, b.viommu, gpu.devid, GPU_VSID).rc).toBe(0);
    expect(vfioAttach(b.proc, gpuDev, nested.id).rc).toBe(0);
    expect(dmaRead(b.host, GVA, 16, GPU)).toEqual(pattern(4096, 1).subarray(0, 16));
    expect(installedSte(b.smmu, GPU_PSID).Config).toBe(SMMU_STE_CONFIG.NESTED);
    expect(b.proc.close(gpuDev)).toBe(0);
    teardown(b);
  });

  it('DMA is translated GVA → GPA (guest stage 1) → host page (stage 2): reads see guest RAM, writes land in process memory', () => {
    const b = bootAttached();
    expect(dmaRead(b.host, GVA + 0x40n)).toEqual(pattern(4096, 1).subarray(0x40, 0x80));
    const data = pattern(200, 9);
    const w = b.host.deviceDma(NIC, { iova: GVA + 0x300n, data });
    expect(w?.status).toBe('done');
    expect(b.proc.readMemory(b.ram + PAGE_A + 0x300n, data.length)).toEqual(data);
    // Nothing else in guest RAM moved: page B is untouched.
    expect(b.proc.readMemory(b.ram + PAGE_B, 4096)).toEqual(pattern(4096, 2));
    // The IOTLB holds the combined entry under the parent's VMID and the guest's ASID.
    const vmid = installedSte(b.smmu, NIC_PSID).S2VMID;
    expect(
      b.smmu.iotlb
        .entries()
        .some((e) => e.tag === vmid && e.asid === ASID && e.iova === Number(GVA)),
    ).toBe(true);
    teardown(b);
  });

  it('a changed stage-1 PTE stays invisible (stale IOTLB) until the guest invalidates through the vIOMMU: TLBI_NH_VA, then TLBI_NH_ASID, then TLBI_NSNH_ALL', () => {
    const b = bootAttached();
    const pageA = pattern(4096, 1);
    const pageB = pattern(4096, 2);
    const vmid = installedSte(b.smmu, NIC_PSID).S2VMID;
    expect(dmaRead(b.host, GVA)).toEqual(pageA.subarray(0, 64));
    // The guest remaps GVA to page B in its own table.
    b.put(L3, PAGE_B | LEAF);
    const stale = b.host.deviceDma(NIC, { iova: GVA, length: 64 });
    expect(stale?.status === 'done' && stale.cachedPages).toBe(1);
    expect(stale?.status === 'done' && stale.data).toEqual(pageA.subarray(0, 64));

    // Commands that do not cover the entry leave it: another ASID, another address.
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [tlbiNhVa(ASID + 1, GVA)])).toEqual({
      rc: 0,
      entryNum: 1,
    });
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [tlbiNhVa(ASID, GVA_UNMAPPED)])).toEqual({
      rc: 0,
      entryNum: 1,
    });
    expect(dmaRead(b.host, GVA)).toEqual(pageA.subarray(0, 64));
    // A good TLBI followed by a CMD_SYNC the guest may not send: EIO at entry 1, and the
    // TLBI's batch was never issued, so the entry is still stale.
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [tlbiNhVa(ASID, GVA), cmdSync])).toEqual({
      rc: -EIO,
      entryNum: 1,
    });
    expect(b.proc.lastError()?.reason).toMatch(/0x46/);
    expect(dmaRead(b.host, GVA)).toEqual(pageA.subarray(0, 64));

    // TLBI_NH_VA with a made-up VMID: the hardware runs it with the parent's VMID.
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [tlbiNhVa(ASID, GVA, 0x1234)])).toEqual({
      rc: 0,
      entryNum: 1,
    });
    expect(
      b.smmu
        .recentCommands()
        .filter((c) => c.name === 'TLBI_NH_VA')
        .at(-1)?.fields,
    ).toMatchObject({ VMID: vmid, ASID, Address: Number(GVA), Leaf: 1 });
    expect(dmaRead(b.host, GVA)).toEqual(pageB.subarray(0, 64));
    const w = b.host.deviceDma(NIC, { iova: GVA + 0x10n, data: new Uint8Array([7, 7, 7]) });
    expect(w?.status).toBe('done');
    expect(b.proc.readMemory(b.ram + PAGE_B + 0x10n, 3)).toEqual(new Uint8Array([7, 7, 7]));

    // Back to A: TLBI_NH_ASID of another ASID keeps B, of the guest's ASID drops it.
    b.put(L3, PAGE_A | LEAF);
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [tlbiNhAsid(ASID + 1)]).rc).toBe(0);
    expect(dmaRead(b.host, GVA + 0x20n, 8)).toEqual(pageB.subarray(0x20, 0x28));
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [tlbiNhAsid(ASID)]).rc).toBe(0);
    expect(dmaRead(b.host, GVA + 0x20n, 8)).toEqual(pageA.subarray(0x20, 0x28));

    // And to B again with TLBI_NSNH_ALL, which the hardware sees as TLBI_NH_ALL of the VMID.
    b.put(L3, PAGE_B | LEAF);
    expect(dmaRead(b.host, GVA, 8)).toEqual(pageA.subarray(0, 8));
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [tlbiNsnhAll])).toEqual({ rc: 0, entryNum: 1 });
    expect(
      b.smmu
        .recentCommands()
        .filter((c) => c.name === 'TLBI_NH_ALL')
        .at(-1)?.fields,
    ).toEqual({ VMID: vmid });
    expect(dmaRead(b.host, GVA, 8)).toEqual(pageB.subarray(0, 8));
    teardown(b);
  });

  it('a changed CD (new TTB0 and ASID) is invisible until CFGI_CD names the guest vSID (an unknown vSID → EIO, entry_num 0)', () => {
    const b = bootAttached();
    expect(dmaRead(b.host, GVA, 16)).toEqual(pattern(4096, 1).subarray(0, 16));
    // The guest switches its context to the second table (GVA -> page C) under a new ASID.
    b.writeCd(L0_ALT, ASID_ALT);
    expect(dmaRead(b.host, GVA, 16)).toEqual(pattern(4096, 1).subarray(0, 16));
    // CFGI_CD with the physical SID is not the guest's to name: no vDEVICE has vSID 0x80.
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [cfgiCd(NIC_PSID)])).toEqual({
      rc: -EIO,
      entryNum: 0,
    });
    expect(b.proc.lastError()?.reason).toMatch(/vSID|vDEVICE/);
    expect(dmaRead(b.host, GVA, 16)).toEqual(pattern(4096, 1).subarray(0, 16));
    // CFGI_STE is never the guest's either (the host owns the STE).
    expect(
      guestInvalidate(b.proc, b.fd, b.viommu, [
        [BigInt(OP.CFGI_STE) | (BigInt(NIC_VSID) << 32n), 1n],
      ]),
    ).toEqual({ rc: -EIO, entryNum: 0 });
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [cfgiCd(NIC_VSID)])).toEqual({
      rc: 0,
      entryNum: 1,
    });
    expect(
      b.smmu
        .recentCommands()
        .filter((c) => c.name === 'CFGI_CD')
        .at(-1)?.fields,
    ).toMatchObject({
      SID: NIC_PSID,
      SSID: 0,
      Leaf: 1,
    });
    // The new CD's ASID has no IOTLB entries: the walk uses the new table.
    expect(dmaRead(b.host, GVA, 16)).toEqual(pattern(4096, 3).subarray(0, 16));
    teardown(b);
  });
});

describe('vIOMMU end to end on SMMUv3: events to the vEVENTQ', () => {
  it('a DMA to a GVA without a stage-1 mapping → F_TRANSLATION on the vEVENTQ: header {0, seq 0} and the hardware record with the vSID in place of the pSID', () => {
    const b = bootAttached();
    const q = veventqAlloc(b.proc, b.fd, b.viommu, 8);
    expect(q.rc).toBe(0);
    expect(objectsOf(b.proc, b.fd)).toContain(`${q.id}:VEVENTQ`);
    expect(readVevents(b.proc, q.qfd)).toEqual({ rc: 0, items: [] });
    expect(b.proc.poll(q.qfd) & 1).toBe(0);

    const out = b.host.deviceDma(NIC, { iova: GVA_UNMAPPED + 0x18n, length: 8 });
    expect(out?.status).toBe('fault');
    const hw = b.smmu.faultLog.at(-1);
    expect(hw?.code).toBe(SMMU_EVENT_ID.F_TRANSLATION);
    expect(hw?.stage).toBe(1);
    const hwWords = words(hw?.record ?? new Uint8Array(32), 4);
    expect(Number(hwWords[0]! >> 32n)).toBe(NIC_PSID);
    expect(b.proc.poll(q.qfd) & 1).toBe(1);

    const got = readVevents(b.proc, q.qfd);
    expect(got.rc).toBe(40);
    expect(got.items).toHaveLength(1);
    const item = got.items[0]!;
    expect([item.flags, item.sequence]).toEqual([0, 0]);
    const evt = item.evt!;
    expect(Number(evt[0]! & 0xffn)).toBe(SMMU_EVENT_ID.F_TRANSLATION);
    expect(Number(evt[0]! >> 32n)).toBe(NIC_VSID);
    expect(evt[0]! & 0xffffffffn).toBe(hwWords[0]! & 0xffffffffn);
    expect(evt.slice(1)).toEqual(hwWords.slice(1));
    // InputAddr (word 2) is the faulting GVA; the record says stage 1 (S2 = word 1 bit 39).
    expect(evt[2]).toBe(GVA_UNMAPPED + 0x18n);
    expect((evt[1]! >> 39n) & 1n).toBe(0n);
    // Read empties the queue.
    expect(readVevents(b.proc, q.qfd).rc).toBe(0);
    expect(b.proc.poll(q.qfd) & 1).toBe(0);
    expect(b.proc.close(q.qfd)).toBe(0);
    teardown(b);
  });

  it('other forwarded events keep their ID: a write to a read-only guest page → F_PERMISSION, an invalid guest CD → C_BAD_CD, both with the vSID', () => {
    const b = bootAttached();
    const q = veventqAlloc(b.proc, b.fd, b.viommu, 8);
    expect(q.rc).toBe(0);
    // L3[2]: GVA + 2 pages -> page B, read-only (AP[2]).
    b.put(L3 + 16n, PAGE_B | LEAF | (1n << 7n));
    const ro = GVA + 2n * PAGE;
    expect(dmaRead(b.host, ro, 8)).toEqual(pattern(4096, 2).subarray(0, 8));
    expect(b.host.deviceDma(NIC, { iova: ro, data: new Uint8Array(4) })?.status).toBe('fault');
    expect(b.proc.readMemory(b.ram + PAGE_B, 4)).toEqual(pattern(4096, 2).subarray(0, 4));
    // The guest invalidates its CD (V = 0) and tells the SMMU.
    b.put(CD_TABLE, 0n);
    expect(guestInvalidate(b.proc, b.fd, b.viommu, [cfgiCd(NIC_VSID)]).rc).toBe(0);
    expect(b.host.deviceDma(NIC, { iova: GVA, length: 4 })?.status).toBe('fault');
    const got = readVevents(b.proc, q.qfd);
    expect(
      got.items.map((i) => [
        i.sequence,
        Number((i.evt?.[0] ?? 0n) & 0xffn),
        Number((i.evt?.[0] ?? 0n) >> 32n),
      ]),
    ).toEqual([
      [0, SMMU_EVENT_ID.F_PERMISSION, NIC_VSID],
      [1, SMMU_EVENT_ID.C_BAD_CD, NIC_VSID],
    ]);
    // F_PERMISSION: a write (RnW = 0) at the GVA.
    expect(got.items[0]?.evt?.[2]).toBe(ro);
    expect(((got.items[0]?.evt?.[1] ?? 0n) >> 35n) & 1n).toBe(0n);
    expect(b.proc.close(q.qfd)).toBe(0);
    teardown(b);
  });

  it('a stage-2 fault (the GPA is not in the IOAS) is recorded by the hardware but NOT forwarded', () => {
    const b = bootAttached();
    const q = veventqAlloc(b.proc, b.fd, b.viommu, 8);
    expect(q.rc).toBe(0);
    const before = b.smmu.faultLog.length;
    const out = b.host.deviceDma(NIC, { iova: GVA_S2_HOLE, length: 8 });
    expect(out?.status).toBe('fault');
    expect(out !== undefined && 'fault' in out ? out.fault.stage : -1).toBe(2);
    expect(b.smmu.faultLog.length).toBe(before + 1);
    const hw = words(b.smmu.faultLog.at(-1)?.record ?? new Uint8Array(32), 4);
    expect(Number(hw[0]! & 0xffn)).toBe(SMMU_EVENT_ID.F_TRANSLATION);
    expect((hw[1]! >> 39n) & 1n).toBe(1n); // S2
    expect(hw[3]! & ~0xfffn).toBe(OUTSIDE_RAM); // the IPA
    expect(readVevents(b.proc, q.qfd)).toEqual({ rc: 0, items: [] });
    expect(b.proc.poll(q.qfd) & 1).toBe(0);
    // A stage-1 fault afterwards does arrive, with sequence 0: nothing was queued before.
    expect(b.host.deviceDma(NIC, { iova: GVA_UNMAPPED, length: 8 })?.status).toBe('fault');
    const got = readVevents(b.proc, q.qfd);
    expect(got.items.map((i) => [i.flags, i.sequence])).toEqual([[0, 0]]);
    expect(b.proc.close(q.qfd)).toBe(0);
    teardown(b);
  });

  it('no event is forwarded for a device that is not attached to a nested HWPT of the vIOMMU, nor without a vEVENTQ', () => {
    const b = boot();
    // The NIC has a vDEVICE but sits on the parent (stage 2 only): its faults are the host's.
    expect(vdeviceAlloc(b.proc, b.fd, b.viommu, b.devid, NIC_VSID).rc).toBe(0);
    expect(vfioAttach(b.proc, b.dev, b.parent).rc).toBe(0);
    const q = veventqAlloc(b.proc, b.fd, b.viommu, 8);
    expect(q.rc).toBe(0);
    expect(b.host.deviceDma(NIC, { iova: 0x300000n, length: 8 })?.status).toBe('fault');
    expect(readVevents(b.proc, q.qfd).rc).toBe(0);
    // Nested now, but the queue is gone: the event is dropped, and a new queue starts empty.
    const nested = hwptAlloc(b.proc, b.fd, b.vsteFields(VSTE_S1(CD_TABLE)));
    expect(vfioAttach(b.proc, b.dev, nested.id).rc).toBe(0);
    expect(b.proc.close(q.qfd)).toBe(0);
    expect(destroy(b.proc, b.fd, q.id)).toBe(0);
    expect(b.host.deviceDma(NIC, { iova: GVA_UNMAPPED, length: 8 })?.status).toBe('fault');
    const q2 = veventqAlloc(b.proc, b.fd, b.viommu, 8);
    expect(q2.rc).toBe(0);
    expect(readVevents(b.proc, q2.qfd).rc).toBe(0);
    expect(b.host.deviceDma(NIC, { iova: GVA_UNMAPPED, length: 8 })?.status).toBe('fault');
    expect(readVevents(b.proc, q2.qfd).items.map((i) => [i.flags, i.sequence])).toEqual([[0, 0]]);
    expect(b.proc.close(q2.qfd)).toBe(0);
    teardown(b);
  });

  it('lost events: depth 2 and 4 faulting DMAs → two events (seq 0, 1) and a LOST_EVENTS header (seq 3); the next event gets seq 4', () => {
    const b = bootAttached();
    const q = veventqAlloc(b.proc, b.fd, b.viommu, 2);
    expect(q.rc).toBe(0);
    const addrs = [0n, 1n, 2n, 3n].map((i) => GVA_UNMAPPED + i * PAGE);
    for (const iova of addrs) {
      expect(b.host.deviceDma(NIC, { iova, length: 4 })?.status).toBe('fault');
    }
    const got = readVevents(b.proc, q.qfd);
    expect(got.rc).toBe(40 + 40 + 8);
    expect(got.items.map((i) => [i.flags, i.sequence])).toEqual([
      [0, 0],
      [0, 1],
      [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 3],
    ]);
    // The first two are the ones kept, in order, each with the vSID.
    expect(got.items.slice(0, 2).map((i) => i.evt?.[2])).toEqual(addrs.slice(0, 2));
    expect(got.items.slice(0, 2).map((i) => Number((i.evt?.[0] ?? 0n) >> 32n))).toEqual([
      NIC_VSID,
      NIC_VSID,
    ]);
    expect(b.host.deviceDma(NIC, { iova: addrs[0]!, length: 4 })?.status).toBe('fault');
    const next = readVevents(b.proc, q.qfd);
    expect(next.items.map((i) => [i.flags, i.sequence, i.evt?.[2]])).toEqual([[0, 4, addrs[0]]]);
    expect(b.proc.close(q.qfd)).toBe(0);
    teardown(b);
  });

  it('a read with room for fewer items returns only whole items and leaves the rest queued', () => {
    const b = bootAttached();
    const q = veventqAlloc(b.proc, b.fd, b.viommu, 4);
    for (const i of [0n, 1n]) {
      expect(b.host.deviceDma(NIC, { iova: GVA_UNMAPPED + i * PAGE, length: 4 })?.status).toBe(
        'fault',
      );
    }
    const small = new Uint8Array(39);
    expect(b.proc.read(q.qfd, small)).toBe(0);
    const one = new Uint8Array(79);
    expect(b.proc.read(q.qfd, one)).toBe(40);
    expect(structs.iommufd_vevent_header.decode(one)).toEqual({ flags: 0, sequence: 0 });
    expect(readVevents(b.proc, q.qfd).items.map((i) => i.sequence)).toEqual([1]);
    expect(b.proc.close(q.qfd)).toBe(0);
    teardown(b);
  });
});

describe('vIOMMU end to end on SMMUv3: the vSTE (arm_smmu_validate_vste)', () => {
  it('bits outside the nesting-allowed masks, Config 6/7 and EATS 2/3 → EIO; nothing is created', () => {
    const b = boot();
    const before = objectsOf(b.proc, b.fd);
    const alloc = (ste0: bigint, ste1 = 0n) => hwptAlloc(b.proc, b.fd, b.vsteFields(ste0, ste1)).rc;
    const s1 = VSTE_S1(CD_TABLE);
    for (const bit of [52n, 53n, 58n]) expect(alloc(s1 | (1n << bit))).toBe(-EIO);
    for (const bit of [8n, 19n, 25n, 30n, 44n, 63n]) expect(alloc(s1, 1n << bit)).toBe(-EIO);
    expect(b.proc.lastError()?.reason).toMatch(/mask|allowed/);
    for (const config of [1n, 2n, 3n, 6n, 7n]) expect(alloc(1n | (config << 1n))).toBe(-EIO);
    expect(b.proc.lastError()?.reason).toMatch(/Config 7/);
    for (const eats of [2n, 3n]) expect(alloc(s1, eats << 28n)).toBe(-EIO);
    expect(b.proc.lastError()?.reason).toMatch(/EATS 3/);
    expect(objectsOf(b.proc, b.fd)).toEqual(before);
    // Every allowed field at once is fine: S1Fmt, S1CDMax, S1DSS, S1CIR/COR/CSH, S1STALLD, EATS 1.
    const allowed0 = s1 | (2n << 4n) | (3n << 59n);
    const allowed1 = 2n | (1n << 2n) | (1n << 4n) | (3n << 6n) | (1n << 27n) | (1n << 28n);
    expect(alloc(allowed0, allowed1)).toBe(0);
    // Abort (Config 0) and bypass (Config 4) are accepted too.
    expect(alloc(1n)).toBe(0);
    expect(alloc(1n | (4n << 1n))).toBe(0);
    teardown(b);
  });

  it('V=0 is accepted whatever else is set, and is installed as an abort STE: DMA faults and no event is recorded', () => {
    const b = boot();
    const junk = ~1n & ((1n << 64n) - 1n);
    const nested = hwptAlloc(b.proc, b.fd, b.vsteFields(junk, junk));
    expect(nested.rc, b.proc.lastError()?.reason).toBe(0);
    expect(vdeviceAlloc(b.proc, b.fd, b.viommu, b.devid, NIC_VSID).rc).toBe(0);
    expect(vfioAttach(b.proc, b.dev, nested.id).rc).toBe(0);
    expect(installedSte(b.smmu, NIC_PSID)).toMatchObject({ V: 1, Config: SMMU_STE_CONFIG.ABORT });
    const q = veventqAlloc(b.proc, b.fd, b.viommu, 4);
    const events = b.smmu.faultLog.length;
    expect(b.host.deviceDma(NIC, { iova: GVA, length: 4 })?.status).toBe('fault');
    expect(b.smmu.faultLog.length).toBe(events);
    expect(readVevents(b.proc, q.qfd).rc).toBe(0);
    expect(b.proc.close(q.qfd)).toBe(0);
    teardown(b);
  });

  it('a bypass vSTE (Config 4) gives the device stage 2 only: GVA is used as a GPA', () => {
    const b = boot();
    const nested = hwptAlloc(b.proc, b.fd, b.vsteFields(1n | (4n << 1n)));
    expect(nested.rc).toBe(0);
    expect(vdeviceAlloc(b.proc, b.fd, b.viommu, b.devid, NIC_VSID).rc).toBe(0);
    expect(vfioAttach(b.proc, b.dev, nested.id).rc).toBe(0);
    expect(installedSte(b.smmu, NIC_PSID).Config).toBe(SMMU_STE_CONFIG.S2_TRANS);
    expect(dmaRead(b.host, PAGE_B + 0x80n, 16)).toEqual(pattern(4096, 2).subarray(0x80, 0x90));
    teardown(b);
  });

  it('allocation flags → EOPNOTSUPP (core: NEST_PARENT, DIRTY_TRACKING; driver: ALLOC_PASID); a wrong data_type → EINVAL; data_len 8 or 24 → EINVAL; NULL data → EFAULT', () => {
    const b = boot();
    const before = objectsOf(b.proc, b.fd);
    const s1 = VSTE_S1(CD_TABLE);
    const alloc = (more: HwptAllocFields) => hwptAlloc(b.proc, b.fd, b.vsteFields(s1, 0n, more)).rc;
    expect(alloc({ flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).toBe(-EOPNOTSUPP);
    expect(alloc({ flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).toBe(-EOPNOTSUPP);
    expect(alloc({ flags: IOMMU_HWPT_ALLOC_PASID })).toBe(-EOPNOTSUPP);
    expect(b.proc.lastError()?.reason).toMatch(/flags/);
    expect(alloc({ data_type: IOMMU_HWPT_DATA_VTD_S1, data_len: 24 })).toBe(-EINVAL);
    expect(b.proc.lastError()?.reason).toMatch(/ARM_SMMUV3/);
    expect(alloc({ data_len: 8 })).toBe(-EINVAL);
    expect(alloc({ data_len: 24 })).toBe(-EINVAL);
    expect(alloc({ data_uptr: 0n })).toBe(-EFAULT);
    expect(objectsOf(b.proc, b.fd)).toEqual(before);
    expect(alloc({})).toBe(0);
    teardown(b);
  });
});
