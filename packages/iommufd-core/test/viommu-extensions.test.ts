/**
 * Two vIOMMU features beyond the selftest's mock, end to end through
 * /dev/iommu with real struct bytes:
 *
 * - the multi-SID extension (not in Linux; the viommu package's
 *   multi-sid.ts): a platform device with stream ids [0x20, 0x21, 0x22]
 *   behind an SMMUv3, IOMMUFD_EXT_VDEVICE_GET_SIDS / SET_VSID and their
 *   errors; without the host's opt-in the ioctls are ENOTTY and the vIOMMU
 *   behaves as 6.17 (a vSID is translated to streams[0] only, and a fault on
 *   any stream is reported with the one virt_id); with it, ATC_INV / CFGI_CD
 *   naming vSID_i reach the SMMU as pSID_i and a fault on pSID_i is read
 *   from the vEVENTQ as vSID_i;
 * - the Tegra241 CMDQV (kernel-semantics.md 2.18 and 5, uapi-notes.md
 *   VIOMMU_ALLOC / HW_QUEUE_ALLOC / GET_HW_INFO): hw_info of the CMDQV, the
 *   VINTF and its 64 KiB mmap page, ENOSPC, the SID pairs and the LVCMDQ
 *   rules with pinned guest memory (catalog 197-199 on Tegra241).
 */
import { SMMU_CD, SMMU_STE, type Smmuv3Iommu, smmuWordsToBytes } from '@iommufd-sim/hw-models';
import {
  E2BIG,
  EBUSY,
  EEXIST,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  ENOSPC,
  ENOTTY,
  ENXIO,
  EOPNOTSUPP,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV,
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
  structs,
} from '@iommufd-sim/uapi-types';
import {
  decodeExtVdeviceSids,
  encodeExtVdeviceSids,
  encodeExtVdeviceVsid,
  IOMMUFD_EXT_VDEVICE_GET_SIDS,
  IOMMUFD_EXT_VDEVICE_SET_VSID,
} from '@iommufd-sim/viommu';
import { afterEach, describe, expect, it } from 'vitest';
import { createHost, type Host, type HostConfig, type Process } from '../src/index.js';
import { destroy, ioasAlloc, map, PAGE, unmap } from './helpers.js';
import { expectErrno, objectIds } from './helpers-a.js';
import { vfioAttach, vfioBind } from './helpers-c.js';

// ---- the machine -------------------------------------------------------------------------------

const PLAT = 'plat0';
const PLAT_SIDS = [0x20, 0x21, 0x22];
const PCI = '0000:05:00.0';
/** Guest RAM: IPA window of the nesting parent. */
const IPA = 0x8000_0000n;
const GUEST_BYTES = 16n * PAGE;
/** Where the guest keeps its CD, and its (empty) stage-1 table. */
const CD_IPA = IPA + 0x800n;
const TTB0_IPA = IPA + 0x1000n;

/** Every host a test made: none may have caught an exception at the system-call boundary. */
const hosts: Host[] = [];
afterEach(() => {
  for (const h of hosts.splice(0)) expect(h.internalErrors).toBe(0);
});

function smmuHost(multiSid: boolean): HostConfig {
  return {
    iommus: [{ name: 'smmu0', model: 'smmuv3' }],
    devices: [
      { name: PLAT, iommu: 'smmu0', streamIds: PLAT_SIDS },
      { name: PCI, iommu: 'smmu0' },
    ],
    viommu: { multiSid },
  };
}

/** Bytes of user memory holding `bytes`; returns the address. */
function userCopy(proc: Process, bytes: Uint8Array): bigint {
  const va = proc.mmap(Math.max(bytes.length, 1));
  expect(proc.writeMemory(va, bytes)).toBe(0);
  return va;
}

/**
 * A VMM on an SMMUv3 host: both devices bound through VFIO, guest RAM
 * mapped at IPA, a NEST_PARENT HWPT, an ARM_SMMUV3 vIOMMU, and a vDEVICE
 * for each device (plat0 virt_id 0x100, the PCI device 0x200).
 */
function vmm(multiSid: boolean) {
  const host = createHost(smmuHost(multiSid));
  hosts.push(host);
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const bind = (name: string) => {
    const devFd = proc.open(host.device(name)?.path ?? '');
    const b = vfioBind(proc, devFd, fd);
    expect(b.rc).toBe(0);
    return { devFd, devId: b.devid };
  };
  const plat = bind(PLAT);
  const pci = bind(PCI);
  const ioas = ioasAlloc(proc, fd);
  const guestVa = proc.mmap(GUEST_BYTES);
  expect(map(proc, fd, ioas, guestVa, GUEST_BYTES, IPA).rc).toBe(0);
  const parent = hwptAlloc(proc, fd, {
    dev_id: plat.devId,
    pt_id: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  expect(parent.rc, proc.lastError()?.reason).toBe(0);
  const viommu = viommuAlloc(proc, fd, {
    dev_id: plat.devId,
    hwpt_id: parent.id,
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  });
  expect(viommu.rc, proc.lastError()?.reason).toBe(0);
  const platVdev = vdeviceAlloc(proc, fd, viommu.id, plat.devId, 0x100n);
  const pciVdev = vdeviceAlloc(proc, fd, viommu.id, pci.devId, 0x200n);
  expect([platVdev.rc, pciVdev.rc]).toEqual([0, 0]);
  const smmu = host.iommus.get('smmu0') as Smmuv3Iommu;
  return {
    host,
    proc,
    fd,
    plat,
    pci,
    ioas,
    guestVa,
    parent: parent.id,
    viommu: viommu.id,
    platVdev,
    pciVdev,
    smmu,
  };
}
type Vmm = ReturnType<typeof vmm>;

// ---- the ioctls ---------------------------------------------------------------------------------

function hwptAlloc(
  proc: Process,
  fd: number,
  f: Partial<ReturnType<typeof structs.iommu_hwpt_alloc.decode>>,
) {
  const b = structs.iommu_hwpt_alloc.encode({
    size: structs.iommu_hwpt_alloc.sizeof,
    data_type: IOMMU_HWPT_DATA_NONE,
    ...f,
  });
  const rc = proc.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return { rc, id: structs.iommu_hwpt_alloc.decode(b).out_hwpt_id };
}

function viommuAlloc(
  proc: Process,
  fd: number,
  f: Partial<ReturnType<typeof structs.iommu_viommu_alloc.decode>>,
) {
  const b = structs.iommu_viommu_alloc.encode({ size: structs.iommu_viommu_alloc.sizeof, ...f });
  const rc = proc.ioctl(fd, IOMMU_VIOMMU_ALLOC, b);
  return { rc, id: structs.iommu_viommu_alloc.decode(b).out_viommu_id };
}

function vdeviceAlloc(proc: Process, fd: number, viommuId: number, devId: number, virtId: bigint) {
  const b = structs.iommu_vdevice_alloc.encode({
    size: 24,
    viommu_id: viommuId,
    dev_id: devId,
    virt_id: virtId,
  });
  const rc = proc.ioctl(fd, IOMMU_VDEVICE_ALLOC, b);
  return { rc, id: structs.iommu_vdevice_alloc.decode(b).out_vdevice_id };
}

function veventqAlloc(proc: Process, fd: number, viommuId: number, depth = 8) {
  const b = structs.iommu_veventq_alloc.encode({
    size: 32,
    viommu_id: viommuId,
    type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    veventq_depth: depth,
  });
  const rc = proc.ioctl(fd, IOMMU_VEVENTQ_ALLOC, b);
  const out = structs.iommu_veventq_alloc.decode(b);
  return { rc, id: out.out_veventq_id, qfd: out.out_veventq_fd };
}

/** IOMMU_HWPT_INVALIDATE on a vIOMMU with SMMUv3 commands; rc and entry_num. */
function invalidate(
  proc: Process,
  fd: number,
  viommuId: number,
  cmds: readonly (readonly [bigint, bigint])[],
) {
  const entries = new Uint8Array(cmds.length * 16);
  cmds.forEach((c, i) => {
    entries.set(structs.iommu_viommu_arm_smmuv3_invalidate.encode({ cmd: [c[0], c[1]] }), i * 16);
  });
  const b = structs.iommu_hwpt_invalidate.encode({
    size: 32,
    hwpt_id: viommuId,
    data_uptr: userCopy(proc, entries),
    data_type: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
    entry_len: 16,
    entry_num: cmds.length,
  });
  const rc = proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, b);
  return { rc, entryNum: structs.iommu_hwpt_invalidate.decode(b).entry_num };
}

/** An ATC_INV (size: all), CFGI_CD (SSID 0, leaf) or CFGI_CD_ALL naming `vsid`. */
const sidCommand = (opcode: 0x40 | 0x05 | 0x06, vsid: number): [bigint, bigint] => [
  BigInt(opcode) | (BigInt(vsid) << 32n),
  opcode === 0x40 ? 52n : opcode === 0x05 ? 1n : 0n,
];

/** IOMMUFD_EXT_VDEVICE_GET_SIDS; rc and out_num_sids. */
function getSids(
  proc: Process,
  fd: number,
  vdeviceId: number,
  over: Partial<Parameters<typeof encodeExtVdeviceSids>[0]> = {},
) {
  const b = encodeExtVdeviceSids({ vdeviceId, outNumSids: 0xdead, ...over });
  const rc = proc.ioctl(fd, IOMMUFD_EXT_VDEVICE_GET_SIDS, b);
  return { rc, n: decodeExtVdeviceSids(b).outNumSids, bytes: b };
}

/** IOMMUFD_EXT_VDEVICE_SET_VSID, from user memory. */
function setVsid(
  proc: Process,
  fd: number,
  vdeviceId: number,
  index: number,
  virtId: bigint,
  over: { size?: number; reserved?: number; tail?: Uint8Array } = {},
): number {
  const { tail = new Uint8Array(0), ...fields } = over;
  const s = encodeExtVdeviceVsid({ vdeviceId, index, virtId, ...fields });
  const arg = new Uint8Array(s.length + tail.length);
  arg.set(s);
  arg.set(tail, s.length);
  return proc.ioctl(fd, IOMMUFD_EXT_VDEVICE_SET_VSID, userCopy(proc, arg));
}

/** The endpoints of every vDEVICE of vIOMMU `viommuId`, as the report shows them. */
function endpoints(v: Vmm): Record<string, [number, bigint][]> {
  const rep = v.proc.inspect(v.fd)?.viommus.find((x) => x.id === v.viommu);
  return Object.fromEntries(
    (rep?.vdevices ?? []).map((d) => [
      d.device,
      d.endpoints.map((e) => [e.index, e.virtId] as [number, bigint]),
    ]),
  );
}

/** The SMMU commands run since `from` that name a stream, without the driver's syncs. */
function sidCommandsSince(smmu: Smmuv3Iommu, from: number): [string, number][] {
  return smmu
    .recentCommands()
    .slice(from)
    .filter((c) => c.name === 'ATC_INV' || c.name === 'CFGI_CD' || c.name === 'CFGI_CD_ALL')
    .map((c) => [c.name as string, c.fields.SID as number]);
}

/**
 * The guest's nested HWPT: a stage-1 vSTE whose CD (in guest RAM) points at
 * an empty stage-1 table, so every DMA faults in stage 1 (F_TRANSLATION, a
 * forwarded event); plat0 attached to it and an ARM_SMMUV3 vEVENTQ.
 */
function guestStage1(v: Vmm) {
  const cd = SMMU_CD.encode({
    T0SZ: 16,
    TG0: 0,
    IPS: 5,
    EPD1: 1,
    V: 1,
    AA64: 1,
    R: 1,
    A: 1,
    ASID: 0x42,
    TTB0: Number(TTB0_IPA),
  });
  expect(v.proc.writeMemory(v.guestVa + (CD_IPA - IPA), smmuWordsToBytes(cd))).toBe(0);
  const ste0 = SMMU_STE.encode({ V: 1, Config: 5, S1ContextPtr: Number(CD_IPA) })[0] as bigint;
  const vste = structs.iommu_hwpt_arm_smmuv3.encode({ ste: [ste0, 0n] });
  const nested = hwptAlloc(v.proc, v.fd, {
    dev_id: v.plat.devId,
    pt_id: v.viommu,
    data_type: IOMMU_HWPT_DATA_ARM_SMMUV3,
    data_len: vste.length,
    data_uptr: userCopy(v.proc, vste),
  });
  expect(nested.rc, v.proc.lastError()?.reason).toBe(0);
  expect(vfioAttach(v.proc, v.plat.devFd, nested.id).rc, v.proc.lastError()?.reason).toBe(0);
  const q = veventqAlloc(v.proc, v.fd, v.viommu);
  expect(q.rc).toBe(0);
  return { nested: nested.id, qfd: q.qfd };
}

/** A stage-1 fault from stream `sid` of plat0: the hardware record and what the vEVENTQ gives. */
function faultOn(v: Vmm, qfd: number, sid: number) {
  const out = v.host.deviceDma(PLAT, { iova: 0x1234_5000, length: 8, requester: sid });
  expect(out?.status).toBe('fault');
  const hw = v.smmu.faultLog.at(-1)?.record as Uint8Array;
  const buf = new Uint8Array(256);
  const n = v.proc.read(qfd, buf);
  const events: { sequence: number; evt: Uint8Array }[] = [];
  for (let at = 0; at + 40 <= n; at += 40) {
    const h = structs.iommufd_vevent_header.decode(buf.subarray(at, at + 8));
    expect(h.flags).toBe(0);
    events.push({ sequence: h.sequence, evt: buf.slice(at + 8, at + 40) });
  }
  expect(n).toBe(events.length * 40);
  return { hw, events };
}

const sidOf = (evt: Uint8Array): number =>
  new DataView(evt.buffer, evt.byteOffset).getUint32(4, true);

// ---- the multi-SID extension ---------------------------------------------------------------------

describe('multi-SID extension: GET_SIDS and SET_VSID', () => {
  it('GET_SIDS: the platform device has 3 stream ids, the PCI device 1; only out_num_sids is written', () => {
    const v = vmm(true);
    const plat = getSids(v.proc, v.fd, v.platVdev.id);
    expect(plat.rc).toBe(0);
    expect(decodeExtVdeviceSids(plat.bytes)).toEqual({
      size: 16,
      vdeviceId: v.platVdev.id,
      outNumSids: 3,
      reserved: 0,
    });
    expect(getSids(v.proc, v.fd, v.pciVdev.id)).toMatchObject({ rc: 0, n: 1 });
  });

  it('SET_VSID index 1 and 2: the vDEVICE answers to three vSIDs', () => {
    const v = vmm(true);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n)).toBe(0);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 2, 0x102n)).toBe(0);
    expect(endpoints(v)).toEqual({
      [PLAT]: [
        [0, 0x100n],
        [1, 0x101n],
        [2, 0x102n],
      ],
      [PCI]: [[0, 0x200n]],
    });
    expect(v.host.internalErrors).toBe(0);
  });

  it('EEXIST: a vSID another endpoint of the vIOMMU holds (its own virt_id, another endpoint, another vDEVICE); nothing changes', () => {
    const v = vmm(true);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n)).toBe(0);
    const before = endpoints(v);
    for (const taken of [0x100n, 0x101n, 0x200n]) {
      expectErrno(
        v.proc,
        setVsid(v.proc, v.fd, v.platVdev.id, 2, taken),
        EEXIST,
        'IOMMUFD_EXT_VDEVICE_SET_VSID',
      );
      expect(v.proc.lastError()?.reason).toContain(`0x${taken.toString(16)}`);
    }
    // An endpoint's vSID is taken for IOMMU_VDEVICE_ALLOC too.
    expect(destroy(v.proc, v.fd, v.pciVdev.id)).toBe(0);
    expectErrno(v.proc, vdeviceAlloc(v.proc, v.fd, v.viommu, v.pci.devId, 0x101n).rc, EEXIST);
    expect(endpoints(v)).toEqual({ [PLAT]: before[PLAT] });
  });

  it('EINVAL: index 0 (the virt_id), index >= the stream count, index 1 of a one-stream device; a short size', () => {
    const v = vmm(true);
    const objects = objectIds(v.proc, v.fd);
    for (const [vdev, index] of [
      [v.platVdev.id, 0],
      [v.platVdev.id, 3],
      [v.platVdev.id, 0xffff_ffff],
      [v.pciVdev.id, 1],
    ] as const) {
      expectErrno(
        v.proc,
        setVsid(v.proc, v.fd, vdev, index, 0x300n),
        EINVAL,
        'IOMMUFD_EXT_VDEVICE_SET_VSID',
      );
    }
    expect(v.proc.lastError()?.reason).toMatch(/1 stream id/);
    expectErrno(v.proc, setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x300n, { size: 23 }), EINVAL);
    expectErrno(v.proc, getSids(v.proc, v.fd, v.platVdev.id, { size: 15 }).rc, EINVAL);
    expect(objectIds(v.proc, v.fd)).toEqual(objects);
    expect(endpoints(v)[PLAT]).toEqual([[0, 0x100n]]);
  });

  it('the copy rules: a longer struct with a zero tail works, a non-zero tail is E2BIG, __reserved EOPNOTSUPP, NULL EFAULT', () => {
    const v = vmm(true);
    expect(
      setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n, { size: 32, tail: new Uint8Array(8) }),
    ).toBe(0);
    const tail = new Uint8Array(8);
    tail[7] = 1;
    expectErrno(v.proc, setVsid(v.proc, v.fd, v.platVdev.id, 2, 0x102n, { size: 32, tail }), E2BIG);
    expectErrno(
      v.proc,
      setVsid(v.proc, v.fd, v.platVdev.id, 2, 0x102n, { reserved: 1 }),
      EOPNOTSUPP,
    );
    expectErrno(v.proc, getSids(v.proc, v.fd, v.platVdev.id, { reserved: 1 }).rc, EOPNOTSUPP);
    expectErrno(v.proc, v.proc.ioctl(v.fd, IOMMUFD_EXT_VDEVICE_SET_VSID, 0n), EFAULT);
    expect(endpoints(v)[PLAT]).toEqual([
      [0, 0x100n],
      [1, 0x101n],
    ]);
  });

  it('ENOENT: no such id, an object that is not a vDEVICE, a destroyed vDEVICE, a tombstoned one', () => {
    const v = vmm(true);
    for (const id of [0, 9999, v.viommu, v.parent]) {
      expectErrno(
        v.proc,
        setVsid(v.proc, v.fd, id, 1, 0x101n),
        ENOENT,
        'IOMMUFD_EXT_VDEVICE_SET_VSID',
      );
      expectErrno(v.proc, getSids(v.proc, v.fd, id).rc, ENOENT, 'IOMMUFD_EXT_VDEVICE_GET_SIDS');
    }
    expect(destroy(v.proc, v.fd, v.pciVdev.id)).toBe(0);
    expectErrno(v.proc, getSids(v.proc, v.fd, v.pciVdev.id).rc, ENOENT);
    // Closing the VFIO cdev unbinds plat0: its vDEVICE is destroyed and its id a tombstone.
    expect(v.proc.close(v.plat.devFd)).toBe(0);
    expectErrno(v.proc, setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n), ENOENT);
    expectErrno(v.proc, getSids(v.proc, v.fd, v.platVdev.id).rc, ENOENT);
    expect(v.host.internalErrors).toBe(0);
  });

  it('a new vSID for an endpoint frees the old; destroying the vDEVICE frees every vSID it held', () => {
    const v = vmm(true);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n)).toBe(0);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n)).toBe(0); // the same again is fine
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x111n)).toBe(0);
    expect(invalidate(v.proc, v.fd, v.viommu, [sidCommand(0x06, 0x101)])).toEqual({
      rc: -EIO,
      entryNum: 0,
    });
    const from = v.smmu.recentCommands().length;
    expect(invalidate(v.proc, v.fd, v.viommu, [sidCommand(0x06, 0x111)])).toEqual({
      rc: 0,
      entryNum: 1,
    });
    expect(sidCommandsSince(v.smmu, from)).toEqual([['CFGI_CD_ALL', 0x21]]);
    expect(destroy(v.proc, v.fd, v.platVdev.id)).toBe(0);
    const again = vdeviceAlloc(v.proc, v.fd, v.viommu, v.plat.devId, 0x111n);
    expect(again.rc).toBe(0);
    expect(endpoints(v)[PLAT]).toEqual([[0, 0x111n]]);
  });
});

describe('multi-SID extension: without the opt-in, the kernel behaviour', () => {
  it('GET_SIDS and SET_VSID are unknown ioctls (ENOTTY)', () => {
    const v = vmm(false);
    expectErrno(v.proc, getSids(v.proc, v.fd, v.platVdev.id).rc, ENOTTY);
    expectErrno(v.proc, setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n), ENOTTY);
    expect(endpoints(v)[PLAT]).toEqual([[0, 0x100n]]);
  });

  it('a vSID is translated to streams[0] only', () => {
    const v = vmm(false);
    const from = v.smmu.recentCommands().length;
    expect(
      invalidate(v.proc, v.fd, v.viommu, [sidCommand(0x05, 0x100), sidCommand(0x40, 0x100)]),
    ).toEqual({
      rc: 0,
      entryNum: 2,
    });
    expect(sidCommandsSince(v.smmu, from)).toEqual([
      ['CFGI_CD', 0x20],
      ['ATC_INV', 0x20],
    ]);
    expect(invalidate(v.proc, v.fd, v.viommu, [sidCommand(0x40, 0x101)])).toEqual({
      rc: -EIO,
      entryNum: 0,
    });
  });

  it('a stage-1 fault on any stream of plat0 is reported with its one virt_id (arm_smmu_find_master)', () => {
    const v = vmm(false);
    const { qfd } = guestStage1(v);
    for (const sid of PLAT_SIDS) {
      const { hw, events } = faultOn(v, qfd, sid);
      expect(events, `stream 0x${sid.toString(16)}`).toHaveLength(1);
      const evt = events[0]?.evt as Uint8Array;
      expect(sidOf(hw)).toBe(sid);
      expect(sidOf(evt)).toBe(0x100);
      expect(evt.subarray(0, 4)).toEqual(hw.subarray(0, 4));
      expect(evt.subarray(8)).toEqual(hw.subarray(8));
    }
    expect(v.host.internalErrors).toBe(0);
  });
});

describe('multi-SID extension: invalidation and events with the opt-in', () => {
  function ready() {
    const v = vmm(true);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 1, 0x101n)).toBe(0);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 2, 0x102n)).toBe(0);
    return v;
  }

  it('ATC_INV, CFGI_CD and CFGI_CD_ALL naming vSID_i reach the SMMU as pSID_i', () => {
    const v = ready();
    const from = v.smmu.recentCommands().length;
    const cmds = [
      sidCommand(0x40, 0x102),
      sidCommand(0x05, 0x101),
      sidCommand(0x06, 0x100),
      sidCommand(0x40, 0x101),
      sidCommand(0x05, 0x200),
    ];
    expect(invalidate(v.proc, v.fd, v.viommu, cmds)).toEqual({ rc: 0, entryNum: 5 });
    expect(sidCommandsSince(v.smmu, from)).toEqual([
      ['ATC_INV', 0x22],
      ['CFGI_CD', 0x21],
      ['CFGI_CD_ALL', 0x20],
      ['ATC_INV', 0x21],
      ['CFGI_CD', v.host.device(PCI)?.device.streamIds[0] as number],
    ]);
    // An unknown vSID still stops the array where it stands.
    expect(
      invalidate(v.proc, v.fd, v.viommu, [sidCommand(0x05, 0x101), sidCommand(0x05, 0x103)]),
    ).toEqual({
      rc: -EIO,
      entryNum: 1,
    });
    expect(v.proc.lastError()?.reason).toContain('0x103');
  });

  it('a fault on pSID_i is read from the vEVENTQ with vSID_i, the rest of the record untouched', () => {
    const v = ready();
    const { qfd } = guestStage1(v);
    const seen: number[] = [];
    for (const [i, sid] of PLAT_SIDS.entries()) {
      const { hw, events } = faultOn(v, qfd, sid);
      expect(events).toHaveLength(1);
      const evt = events[0]?.evt as Uint8Array;
      expect(evt[0]).toBe(0x10); // F_TRANSLATION
      expect(sidOf(evt)).toBe(0x100 + i);
      expect(evt.subarray(0, 4)).toEqual(hw.subarray(0, 4));
      expect(evt.subarray(8)).toEqual(hw.subarray(8));
      seen.push(events[0]?.sequence as number);
    }
    expect(seen).toEqual([seen[0], (seen[0] as number) + 1, (seen[0] as number) + 2]);
  });

  it('a stream without its own vSID reports the virt_id; setting one while attached takes effect at once', () => {
    const v = vmm(true);
    const { qfd } = guestStage1(v);
    expect(sidOf(faultOn(v, qfd, 0x22).events[0]?.evt as Uint8Array)).toBe(0x100);
    expect(setVsid(v.proc, v.fd, v.platVdev.id, 2, 0x102n)).toBe(0);
    expect(sidOf(faultOn(v, qfd, 0x22).events[0]?.evt as Uint8Array)).toBe(0x102);
    expect(sidOf(faultOn(v, qfd, 0x21).events[0]?.evt as Uint8Array)).toBe(0x100);
    expect(v.host.internalErrors).toBe(0);
  });
});

// ---- Tegra241 CMDQV ----------------------------------------------------------------------------

const TEGRA_DEV = '0000:01:00.0';
const TEGRA_DEV2 = '0000:01:00.1';
const PLAIN_DEV = '0000:02:00.0';
/** IOVA of the guest memory the LVCMDQs live in. */
const QUEUE_IOVA = 0x4000_0000n;

function tegraHost(
  cmdqv: { vintfs?: number; lvcmdqsPerVintf?: number; sidsPerVintf?: number } = {},
) {
  const host = createHost({
    iommus: [
      { name: 'smmu0', model: 'smmuv3' },
      { name: 'smmu1', model: 'smmuv3' },
    ],
    devices: [
      { name: TEGRA_DEV, iommu: 'smmu0' },
      { name: TEGRA_DEV2, iommu: 'smmu0' },
      { name: PLAIN_DEV, iommu: 'smmu1' },
    ],
    viommu: { tegra241Cmdqv: { smmu0: cmdqv } },
  });
  hosts.push(host);
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const bind = (name: string) => {
    const b = vfioBind(proc, proc.open(host.device(name)?.path ?? ''), fd);
    expect(b.rc).toBe(0);
    return b.devid;
  };
  const dev = bind(TEGRA_DEV);
  const dev2 = bind(TEGRA_DEV2);
  const plainDev = bind(PLAIN_DEV);
  const ioas = ioasAlloc(proc, fd);
  const parentOf = (devId: number) => {
    const p = hwptAlloc(proc, fd, {
      dev_id: devId,
      pt_id: ioas,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
    });
    expect(p.rc).toBe(0);
    return p.id;
  };
  const parent = parentOf(dev);
  const plainParent = parentOf(plainDev);
  /** VIOMMU_ALLOC TEGRA241_CMDQV with `dataLen` bytes of iommu_viommu_tegra241_cmdqv (0: none). */
  const tegraViommu = (dataLen = 16) => {
    const data = userCopy(proc, new Uint8Array(Math.max(dataLen, 16)).fill(0xee));
    const r = viommuAlloc(proc, fd, {
      dev_id: dev,
      hwpt_id: parent,
      type: IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
      data_len: dataLen,
      data_uptr: dataLen === 0 ? 0n : data,
    });
    const out = structs.iommu_viommu_tegra241_cmdqv.decode(proc.readMemory(data, 16) as Uint8Array);
    return { ...r, out };
  };
  return { host, proc, fd, dev, dev2, plainDev, ioas, parent, plainParent, tegraViommu };
}

/** IOMMU_GET_HW_INFO with an 16-byte buffer (filled with 0xa5 first). */
function hwInfo(proc: Process, fd: number, devId: number, inType?: number) {
  const buf = userCopy(proc, new Uint8Array(16).fill(0xa5));
  const b = structs.iommu_hw_info.encode({
    size: structs.iommu_hw_info.sizeof,
    flags: inType === undefined ? 0 : IOMMU_HW_INFO_FLAG_INPUT_TYPE,
    dev_id: devId,
    data_len: 16,
    data_uptr: buf,
    in_data_type: inType ?? 0,
  });
  const rc = proc.ioctl(fd, IOMMU_GET_HW_INFO, b);
  const out = structs.iommu_hw_info.decode(b);
  return {
    rc,
    type: out.out_data_type,
    len: out.data_len,
    data: proc.readMemory(buf, 16) as Uint8Array,
  };
}

function hwQueueAlloc(
  proc: Process,
  fd: number,
  viommuId: number,
  index: number,
  iova: bigint,
  length: bigint,
  type = IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
) {
  const b = structs.iommu_hw_queue_alloc.encode({
    size: 40,
    viommu_id: viommuId,
    type,
    index,
    nesting_parent_iova: iova,
    length,
  });
  const rc = proc.ioctl(fd, IOMMU_HW_QUEUE_ALLOC, b);
  return { rc, id: structs.iommu_hw_queue_alloc.decode(b).out_hw_queue_id };
}

describe('Tegra241 CMDQV: hw_info and the vIOMMU', () => {
  it('GET_HW_INFO with INPUT_TYPE TEGRA241_CMDQV gives iommu_hw_info_tegra241_cmdqv; without it, the SMMUv3 registers', () => {
    const t = tegraHost({ lvcmdqsPerVintf: 4, sidsPerVintf: 8 });
    const info = hwInfo(t.proc, t.fd, t.dev, IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV);
    expect(info).toMatchObject({ rc: 0, type: IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, len: 8 });
    // version 1, log2vcmdqs 2, log2vsids 3; the buffer past the 8 bytes is cleared.
    expect([...info.data]).toEqual([0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const plain = hwInfo(t.proc, t.fd, t.dev);
    expect(plain).toMatchObject({ rc: 0, type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3, len: 40 });
    expect(hwInfo(t.proc, t.fd, t.dev, IOMMU_HW_INFO_TYPE_ARM_SMMUV3)).toMatchObject({
      rc: 0,
      len: 40,
    });
  });

  it('an SMMU without a CMDQV refuses the TEGRA241_CMDQV hw_info and vIOMMU type (EOPNOTSUPP)', () => {
    const t = tegraHost();
    expectErrno(
      t.proc,
      hwInfo(t.proc, t.fd, t.plainDev, IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV).rc,
      EOPNOTSUPP,
    );
    const objects = objectIds(t.proc, t.fd);
    const r = viommuAlloc(t.proc, t.fd, {
      dev_id: t.plainDev,
      hwpt_id: t.plainParent,
      type: IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
      data_len: 16,
      data_uptr: userCopy(t.proc, new Uint8Array(16)),
    });
    expectErrno(t.proc, r.rc, EOPNOTSUPP, 'IOMMU_VIOMMU_ALLOC');
    expect(t.proc.lastError()?.reason).toContain('CMDQV');
    expect(objectIds(t.proc, t.fd)).toEqual(objects);
  });

  it('VIOMMU_ALLOC TEGRA241_CMDQV without data, or with less than the struct, is EINVAL and leaves nothing', () => {
    const t = tegraHost({ vintfs: 2 });
    const objects = objectIds(t.proc, t.fd);
    expectErrno(t.proc, t.tegraViommu(0).rc, EINVAL, 'IOMMU_VIOMMU_ALLOC');
    expectErrno(t.proc, t.tegraViommu(8).rc, EINVAL);
    expect(objectIds(t.proc, t.fd)).toEqual(objects);
    // Neither took the one user VINTF.
    expect(t.tegraViommu().rc).toBe(0);
  });

  it('with data: out_vintf_mmap_offset and a 64 KiB length; an mmap of exactly that works, any other is ENXIO', () => {
    const t = tegraHost();
    const v = t.tegraViommu();
    expect(v.rc, t.proc.lastError()?.reason).toBe(0);
    expect(v.out.out_vintf_mmap_length).toBe(0x10000n);
    const offset = v.out.out_vintf_mmap_offset;
    const rep = t.proc.inspect(t.fd)?.viommus.find((x) => x.id === v.id);
    expect(rep).toMatchObject({
      driver: 'tegra241-cmdqv',
      mmap: { offset, length: 0x10000, mappings: 0 },
    });
    expectErrno(t.proc, Number(t.proc.mmap(0x8000, { fd: t.fd, offset })), ENXIO);
    expectErrno(
      t.proc,
      Number(t.proc.mmap(0x10000, { fd: t.fd, offset: offset + 0x1000n })),
      ENXIO,
    );
    const va = t.proc.mmap(0x10000, { fd: t.fd, offset });
    expect(va).toBeGreaterThan(0n);
    expect(t.proc.readMemory(va, 0x10000)).toEqual(new Uint8Array(0x10000));
    // The mapping holds the vIOMMU until it is unmapped.
    expectErrno(t.proc, destroy(t.proc, t.fd, v.id), EBUSY);
    expect(t.proc.munmap(va, 0x10000)).toBe(0);
    expect(destroy(t.proc, t.fd, v.id)).toBe(0);
  });

  it("VINTF exhaustion: the fourth of four VINTFs (VINTF0 is the kernel's) is ENOSPC; destroying one frees it", () => {
    const t = tegraHost({ vintfs: 4 });
    const ids = [t.tegraViommu(), t.tegraViommu(), t.tegraViommu()].map((v) => {
      expect(v.rc).toBe(0);
      return v.id;
    });
    const objects = objectIds(t.proc, t.fd);
    expectErrno(t.proc, t.tegraViommu().rc, ENOSPC, 'IOMMU_VIOMMU_ALLOC');
    expect(t.proc.lastError()?.reason).toContain('VINTF');
    expect(objectIds(t.proc, t.fd)).toEqual(objects);
    expect(destroy(t.proc, t.fd, ids[1] as number)).toBe(0);
    expect(t.tegraViommu().rc).toBe(0);
    // A plain ARM_SMMUV3 vIOMMU on the same SMMU takes no VINTF.
    expect(
      viommuAlloc(t.proc, t.fd, {
        dev_id: t.dev,
        hwpt_id: t.parent,
        type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
      }).rc,
    ).toBe(0);
  });

  it("vDEVICEs: a virt_id over 32 bits is EINVAL; the VINTF's SID pairs run out with ENOSPC and come back on destroy", () => {
    const t = tegraHost({ sidsPerVintf: 1 });
    const v = t.tegraViommu();
    const objects = objectIds(t.proc, t.fd);
    expectErrno(
      t.proc,
      vdeviceAlloc(t.proc, t.fd, v.id, t.dev, 1n << 32n).rc,
      EINVAL,
      'IOMMU_VDEVICE_ALLOC',
    );
    expect(objectIds(t.proc, t.fd)).toEqual(objects);
    const a = vdeviceAlloc(t.proc, t.fd, v.id, t.dev, 0xffff_ffffn);
    expect(a.rc).toBe(0);
    expectErrno(t.proc, vdeviceAlloc(t.proc, t.fd, v.id, t.dev2, 2n).rc, ENOSPC);
    expect(destroy(t.proc, t.fd, a.id)).toBe(0);
    expect(vdeviceAlloc(t.proc, t.fd, v.id, t.dev2, 2n).rc).toBe(0);
  });
});

describe('Tegra241 CMDQV: LVCMDQs (HW_QUEUE_ALLOC type TEGRA241_CMDQV)', () => {
  /**
   * A Tegra vIOMMU and `bytes` of guest memory at QUEUE_IOVA, one IOAS
   * mapping per page (as the selftest maps its queue pages) unless `whole`.
   */
  function queues(bytes = 4n * PAGE, whole = false) {
    const t = tegraHost();
    const v = t.tegraViommu();
    expect(v.rc).toBe(0);
    const va = t.proc.mmap(bytes);
    const step = whole ? bytes : PAGE;
    for (let at = 0n; at < bytes; at += step) {
      expect(map(t.proc, t.fd, t.ioas, va + at, step, QUEUE_IOVA + at).rc).toBe(0);
    }
    const alloc = (index: number, iova: bigint, length: bigint, type?: number) =>
      hwQueueAlloc(t.proc, t.fd, v.id, index, iova, length, type);
    return { ...t, viommu: v.id, alloc };
  }

  it('the length must be a power of two from 32 bytes to 2^(IDR1.CMDQS + 4) (EINVAL); nothing stays pinned', () => {
    const MiB = 1024n * 1024n;
    const t = queues(16n * MiB, true);
    const pinned = t.host.pinnedPages();
    const objects = objectIds(t.proc, t.fd);
    for (const length of [48n, 16n, 3n * PAGE, 16n * MiB]) {
      expectErrno(t.proc, t.alloc(0, QUEUE_IOVA, length).rc, EINVAL, 'IOMMU_HW_QUEUE_ALLOC');
      expect(t.proc.lastError()?.reason).toMatch(/power of two from 32 to 8388608/);
    }
    expect(objectIds(t.proc, t.fd)).toEqual(objects);
    expect(t.host.pinnedPages()).toBe(pinned);
    // 8 MiB is the largest length; its base must be 8 MiB aligned in physical memory, which
    // one of these 2 MiB steps of a 16 MiB (2 MiB aligned) buffer is. The others are refused
    // for their alignment, not their length.
    let placed = -1n;
    for (const at of [0n, 2n, 4n, 6n].map((n) => n * MiB)) {
      const r = t.alloc(0, QUEUE_IOVA + at, 8n * MiB);
      if (r.rc === 0) {
        placed = at;
        break;
      }
      expectErrno(t.proc, r.rc, EINVAL);
      expect(t.proc.lastError()?.reason).toContain('aligned');
    }
    expect(placed).toBeGreaterThanOrEqual(0n);
    expect(t.alloc(1, QUEUE_IOVA + 0x20n, 32n).rc).toBe(0);
    const rep = t.proc.inspect(t.fd)?.viommus.find((x) => x.id === t.viommu);
    expect(rep?.hwQueues.map((q) => [q.index, q.iova, q.length])).toEqual([
      [0, QUEUE_IOVA + placed, 8n * MiB],
      [1, QUEUE_IOVA + 0x20n, 32n],
    ]);
  });

  it('the base must be aligned to the length (EINVAL)', () => {
    const t = queues();
    expectErrno(t.proc, t.alloc(0, QUEUE_IOVA + 0x800n, PAGE).rc, EINVAL);
    expect(t.proc.lastError()?.reason).toContain('aligned');
    expectErrno(t.proc, t.alloc(0, QUEUE_IOVA + 0x10n, 32n).rc, EINVAL);
    expect(t.alloc(0, QUEUE_IOVA + 0x800n, 0x800n).rc).toBe(0);
  });

  it('indexes: 1 before 0 is EIO, 0 twice EEXIST, 2 (= LVCMDQs per VINTF) EINVAL; destroy highest first', () => {
    const t = queues();
    const none = objectIds(t.proc, t.fd);
    expectErrno(t.proc, t.alloc(1, QUEUE_IOVA, PAGE).rc, EIO, 'IOMMU_HW_QUEUE_ALLOC');
    expect(t.proc.lastError()?.reason).toMatch(/index 0 must be allocated before index 1/);
    expect(objectIds(t.proc, t.fd)).toEqual(none);
    const q0 = t.alloc(0, QUEUE_IOVA, PAGE);
    expect(q0.rc).toBe(0);
    const one = objectIds(t.proc, t.fd);
    expectErrno(t.proc, t.alloc(0, QUEUE_IOVA + PAGE, PAGE).rc, EEXIST);
    expect(objectIds(t.proc, t.fd)).toEqual(one);
    const q1 = t.alloc(1, QUEUE_IOVA + PAGE, PAGE);
    expect(q1.rc).toBe(0);
    expectErrno(t.proc, t.alloc(2, QUEUE_IOVA + 2n * PAGE, PAGE).rc, EINVAL);
    // The refused allocations pinned nothing: the page they named unmaps.
    expect(unmap(t.proc, t.fd, t.ioas, QUEUE_IOVA + 2n * PAGE, PAGE).rc).toBe(0);
    expectErrno(t.proc, destroy(t.proc, t.fd, q0.id), EBUSY);
    expect(destroy(t.proc, t.fd, q1.id)).toBe(0);
    expect(destroy(t.proc, t.fd, q0.id)).toBe(0);
    expect(t.host.internalErrors).toBe(0);
  });

  it('the queue memory is pinned: UNMAP of it is EBUSY, of a page beside it fine, and after the destroy fine too', () => {
    const t = queues();
    const q = t.alloc(0, QUEUE_IOVA, PAGE);
    expect(q.rc).toBe(0);
    expectErrno(t.proc, unmap(t.proc, t.fd, t.ioas, QUEUE_IOVA, PAGE).rc, EBUSY);
    expect(unmap(t.proc, t.fd, t.ioas, QUEUE_IOVA + 3n * PAGE, PAGE)).toEqual({
      rc: 0,
      length: PAGE,
    });
    expect(destroy(t.proc, t.fd, q.id)).toBe(0);
    expect(unmap(t.proc, t.fd, t.ioas, QUEUE_IOVA, PAGE)).toEqual({ rc: 0, length: PAGE });
  });

  it('other queue types, and TEGRA241_CMDQV queues on a plain SMMUv3 vIOMMU, are EOPNOTSUPP', () => {
    const t = queues();
    expectErrno(t.proc, t.alloc(0, QUEUE_IOVA, PAGE, IOMMU_HW_QUEUE_TYPE_SELFTEST).rc, EOPNOTSUPP);
    const plain = viommuAlloc(t.proc, t.fd, {
      dev_id: t.dev,
      hwpt_id: t.parent,
      type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    });
    expect(plain.rc).toBe(0);
    expectErrno(t.proc, hwQueueAlloc(t.proc, t.fd, plain.id, 0, QUEUE_IOVA, PAGE).rc, EOPNOTSUPP);
    expect(t.proc.lastError()?.reason).toContain('arm-smmuv3');
  });
});
