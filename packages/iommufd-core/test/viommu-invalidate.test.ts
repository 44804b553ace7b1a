/**
 * Guest invalidation through an ARM SMMUv3 vIOMMU (IOMMU_HWPT_INVALIDATE
 * with hwpt_id = the vIOMMU id and iommu_viommu_arm_smmuv3_invalidate
 * entries; hw-formats.md 2.6 "What iommufd accepts", kernel-semantics.md 2.14
 * and section 5): what reaches the host SMMU's command queue, read back as
 * raw words from the queue's memory. arm_vsmmu_cache_invalidate copies the
 * whole array first (iommu_copy_struct_from_full_user_array), converts each
 * command (the vIOMMU's VMID into TLBI_NH_*, TLBI_NSNH_ALL → TLBI_NH_ALL,
 * vSID → pSID for ATC_INV / CFGI_CD / CFGI_CD_ALL, everything else EIO) and
 * issues them in batches of CMDQ_BATCH_ENTRIES - 1 = 63, each followed by a
 * CMD_SYNC; a refused command stops it with entry_num = its index and the
 * commands converted since the last batch never issued.
 */
import { readSmmuWords, SMMU_STE, type Smmuv3Iommu } from '@iommufd-sim/hw-models';
import {
  E2BIG,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  EOPNOTSUPP,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  structs,
} from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost, type Process } from '../src/index.js';
import { destroy, ioasAlloc, PAGE } from './helpers.js';
import { objectsOf, vfioAttach, vfioBind } from './helpers-c.js';

const NIC = '0000:00:10.0';
const NIC_PSID = 0x80;
const NIC_VSID = 0x21;
const GPU = '0000:00:11.0';
const GPU_PSID = 0x88;
const GPU_VSID = 0x1234_5678; // any 32-bit value is a vSID
const BATCH = 63; // CMDQ_BATCH_ENTRIES - 1
const ENTRY = 16;
const U64 = (1n << 64n) - 1n;

type Cmd = readonly [bigint, bigint];

/** Opcodes (hw-formats.md 2.6). */
const OP = {
  PREFETCH_CONFIG: 0x01,
  CFGI_STE: 0x03,
  CFGI_STE_RANGE: 0x04,
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_EL2_ALL: 0x20,
  TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
  PRI_RESP: 0x41,
  RESUME: 0x44,
  STALL_TERM: 0x45,
  CMD_SYNC: 0x46,
} as const;

const VMID_FIELD = 0xffffn << 32n;
const SID_FIELD = 0xffff_ffffn << 32n;

/** A command with `opcode` and every other bit of both words taken from `junk`. */
const withOp = (opcode: number, w0: bigint, w1: bigint): Cmd => [
  (w0 & ~0xffn) | BigInt(opcode),
  w1,
];
const sidCmd = (opcode: number, sid: number, low = 0n, w1 = 0n): Cmd => [
  (BigInt(sid) << 32n) | (low & 0xffff_ff00n) | BigInt(opcode),
  w1,
];

// ---- reference: arm_vsmmu_convert_user_cmd + the batching of arm_vsmmu_cache_invalidate ------

type Converted = { ok: true; cmd: Cmd } | { ok: false };

/** What the kernel makes of one guest command for `vmid`, with `psidOf` the vDEVICE lookup. */
function referenceConvert(
  [w0, w1]: Cmd,
  vmid: number,
  psidOf: (vsid: number) => number | undefined,
): Converted {
  const op = Number(w0 & 0xffn);
  const vmidBits = BigInt(vmid) << 32n;
  if (op === OP.TLBI_NSNH_ALL) return { ok: true, cmd: [BigInt(OP.TLBI_NH_ALL) | vmidBits, 0n] };
  if (
    op === OP.TLBI_NH_VA ||
    op === OP.TLBI_NH_VAA ||
    op === OP.TLBI_NH_ALL ||
    op === OP.TLBI_NH_ASID
  ) {
    return { ok: true, cmd: [(w0 & ~VMID_FIELD) | vmidBits, w1] };
  }
  if (op === OP.ATC_INV || op === OP.CFGI_CD || op === OP.CFGI_CD_ALL) {
    const psid = psidOf(Number(w0 >> 32n));
    if (psid === undefined) return { ok: false };
    return { ok: true, cmd: [(w0 & ~SID_FIELD) | (BigInt(psid) << 32n), w1] };
  }
  return { ok: false };
}

interface Expected {
  rc: number;
  entryNum: number;
  /** What reaches the command queue; null marks the driver's CMD_SYNC. */
  issued: (Cmd | null)[];
}

/** The whole call as 6.17 answers it (after the core's checks pass). */
function referenceInvalidate(
  cmds: readonly Cmd[],
  vmid: number,
  psidOf: (vsid: number) => number | undefined,
): Expected {
  if (cmds.length === 0) return { rc: -EINVAL, entryNum: 0, issued: [] };
  const issued: (Cmd | null)[] = [];
  let pending: Cmd[] = [];
  for (let i = 0; i < cmds.length; i++) {
    const c = referenceConvert(cmds[i] as Cmd, vmid, psidOf);
    if (!c.ok) return { rc: -EIO, entryNum: i, issued };
    pending.push(c.cmd);
    if (pending.length === BATCH || i === cmds.length - 1) {
      issued.push(...pending, null);
      pending = [];
    }
  }
  return { rc: 0, entryNum: cmds.length, issued };
}

// ---- ioctls and the hardware's view ---------------------------------------------------

type InvFields = Partial<ReturnType<typeof structs.iommu_hwpt_invalidate.decode>>;

function hwptAlloc(proc: Process, fd: number, devId: number, ptId: number, flags: number): number {
  const b = structs.iommu_hwpt_alloc.encode({
    size: structs.iommu_hwpt_alloc.sizeof,
    dev_id: devId,
    pt_id: ptId,
    flags,
  });
  expect(proc.ioctl(fd, IOMMU_HWPT_ALLOC, b)).toBe(0);
  return structs.iommu_hwpt_alloc.decode(b).out_hwpt_id;
}

function viommuAlloc(proc: Process, fd: number, devId: number, hwptId: number): number {
  const b = structs.iommu_viommu_alloc.encode({
    size: structs.iommu_viommu_alloc.sizeof,
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: devId,
    hwpt_id: hwptId,
  });
  expect(proc.ioctl(fd, IOMMU_VIOMMU_ALLOC, b)).toBe(0);
  return structs.iommu_viommu_alloc.decode(b).out_viommu_id;
}

function vdeviceAlloc(proc: Process, fd: number, viommu: number, devId: number, virtId: number) {
  const b = structs.iommu_vdevice_alloc.encode({
    size: structs.iommu_vdevice_alloc.sizeof,
    viommu_id: viommu,
    dev_id: devId,
    virt_id: BigInt(virtId),
  });
  expect(proc.ioctl(fd, IOMMU_VDEVICE_ALLOC, b)).toBe(0);
  return structs.iommu_vdevice_alloc.decode(b).out_vdevice_id;
}

/** `cmds` as entries of `entryLen` bytes (the first min(16, entryLen) of each, then `tail`). */
function entryBytes(
  cmds: readonly Cmd[],
  entryLen = ENTRY,
  tail?: (i: number) => number,
): Uint8Array {
  const out = new Uint8Array(cmds.length * entryLen);
  cmds.forEach(([w0, w1], i) => {
    const e = structs.iommu_viommu_arm_smmuv3_invalidate.encode({ cmd: [w0, w1] });
    out.set(e.subarray(0, Math.min(ENTRY, entryLen)), i * entryLen);
    for (let b = ENTRY; b < entryLen; b++) out[i * entryLen + b] = tail?.(i) ?? 0;
  });
  return out;
}

/**
 * A vIOMMU host: an SMMUv3, the NIC and the GPU bound through VFIO, a
 * NEST_PARENT HWPT and an ARM_SMMUV3 vIOMMU with a vDEVICE for each device.
 */
function vsmmu() {
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
  const nicDev = proc.open(host.device(NIC)?.path ?? '');
  const gpuDev = proc.open(host.device(GPU)?.path ?? '');
  const nic = vfioBind(proc, nicDev, fd).devid;
  const gpu = vfioBind(proc, gpuDev, fd).devid;
  const ioas = ioasAlloc(proc, fd);
  const parent = hwptAlloc(proc, fd, nic, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  const viommu = viommuAlloc(proc, fd, nic, parent);
  const nicVdev = vdeviceAlloc(proc, fd, viommu, nic, NIC_VSID);
  const gpuVdev = vdeviceAlloc(proc, fd, viommu, gpu, GPU_VSID);
  // The NIC on the parent: its STE carries the parent's VMID, as the hardware has it.
  expect(vfioAttach(proc, nicDev, parent).rc).toBe(0);
  const vmid = SMMU_STE.decode(smmu.streamTable.readSte(NIC_PSID)).S2VMID as number;
  expect(vmid).toBeGreaterThan(0);
  expect(proc.inspect(fd)?.viommus.find((v) => v.id === viommu)?.vmid).toBe(vmid);
  const entries = proc.mmap(64n * PAGE);
  const psidOf = (vsid: number) =>
    vsid === NIC_VSID ? NIC_PSID : vsid === GPU_VSID ? GPU_PSID : undefined;

  /** The commands the SMMU's queue took since its PROD was `prod0`, as raw words. */
  const queuedSince = (prod0: number): Cmd[] => {
    const q = smmu.cmdq;
    const span = 2 ** (q.log2Size + 1);
    const n = (((q.prod - prod0) % span) + span) % span;
    expect(n).toBeLessThanOrEqual(q.capacity);
    return Array.from({ length: n }, (_, i) => {
      const at = q.base + ((prod0 + i) % q.capacity) * ENTRY;
      const [w0, w1] = readSmmuWords(q.memory, at, 2);
      return [w0 as bigint, w1 as bigint] as const;
    });
  };

  /**
   * IOMMU_HWPT_INVALIDATE on the vIOMMU with `bytes` at the start of the
   * entries buffer (unless `fields` say otherwise); rc, entry_num written
   * back, what the SMMU ran, and whether the object list stayed the same.
   */
  const invalidate = (bytes: Uint8Array, fields: InvFields = {}) => {
    expect(proc.writeMemory(entries, bytes)).toBe(0);
    const before = objectsOf(proc, fd);
    const prod0 = smmu.cmdq.prod;
    const b = structs.iommu_hwpt_invalidate.encode({
      size: structs.iommu_hwpt_invalidate.sizeof,
      hwpt_id: viommu,
      data_uptr: entries,
      data_type: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
      entry_len: ENTRY,
      entry_num: bytes.length / ENTRY,
      ...fields,
    });
    const rc = proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, b);
    expect(objectsOf(proc, fd)).toEqual(before);
    return {
      rc,
      entryNum: structs.iommu_hwpt_invalidate.decode(b).entry_num,
      queued: queuedSince(prod0),
      reason: rc < 0 ? (proc.lastError()?.reason ?? '') : '',
    };
  };
  const run = (cmds: readonly Cmd[]) => invalidate(entryBytes(cmds));
  return {
    host,
    smmu,
    proc,
    fd,
    nicDev,
    gpuDev,
    nic,
    gpu,
    ioas,
    parent,
    viommu,
    nicVdev,
    gpuVdev,
    vmid,
    entries,
    psidOf,
    invalidate,
    run,
  };
}

/** Queue contents with every CMD_SYNC replaced by null, to compare with the reference. */
function withSyncs(queued: readonly Cmd[]): (Cmd | null)[] {
  return queued.map((c) => (Number(c[0] & 0xffn) === OP.CMD_SYNC ? null : c));
}

function close(env: ReturnType<typeof vsmmu>): void {
  expect(env.proc.close(env.nicDev)).toBe(0);
  expect(env.proc.close(env.gpuDev)).toBe(0);
  expect(env.proc.close(env.fd)).toBe(0);
  expect(env.host.internalErrors).toBe(0);
}

// Guest words with every bit set that a field could use.
const JUNK0 = 0xfedc_ba98_7654_3200n;
const JUNK1 = 0x0123_4567_89ab_cdefn;

describe('SMMUv3 vIOMMU invalidation: what the guest may send and what the SMMU runs', () => {
  it('TLBI_NH_VA / TLBI_NH_VAA / TLBI_NH_ALL / TLBI_NH_ASID: only the VMID field (47:32) changes, to the parent’s VMID; one batch ends with the host’s CMD_SYNC', () => {
    const env = vsmmu();
    const ops = [OP.TLBI_NH_VA, OP.TLBI_NH_VAA, OP.TLBI_NH_ALL, OP.TLBI_NH_ASID];
    const cmds = ops.map((op) => withOp(op, JUNK0, JUNK1));
    const got = env.run(cmds);
    expect([got.rc, got.entryNum]).toEqual([0, 4]);
    const vmid = BigInt(env.vmid) << 32n;
    expect(got.queued.slice(0, 4)).toEqual(cmds.map(([w0, w1]) => [(w0 & ~VMID_FIELD) | vmid, w1]));
    expect(got.queued).toHaveLength(5);
    expect(env.smmu.recentCommands().at(-1)?.name).toBe('CMD_SYNC');
    // Decoded, the hardware saw the parent's VMID and the guest's ASID and address.
    const va = env.smmu.recentCommands().at(-5);
    expect(va?.name).toBe('TLBI_NH_VA');
    expect(va?.fields.VMID).toBe(env.vmid);
    expect(va?.fields.ASID).toBe(Number(JUNK0 >> 48n));
    close(env);
  });

  it('a second vIOMMU over another nest parent confines the same guest command to its own VMID', () => {
    const env = vsmmu();
    const parent2 = hwptAlloc(env.proc, env.fd, env.gpu, env.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const viommu2 = viommuAlloc(env.proc, env.fd, env.gpu, parent2);
    expect(vfioAttach(env.proc, env.gpuDev, parent2).rc).toBe(0);
    const vmid2 = SMMU_STE.decode(env.smmu.streamTable.readSte(GPU_PSID)).S2VMID as number;
    expect(vmid2).not.toBe(env.vmid);
    const cmd = withOp(OP.TLBI_NH_ASID, 5n << 48n, 0n);
    expect(env.run([cmd]).queued[0]?.[0]).toBe(cmd[0] | (BigInt(env.vmid) << 32n));
    const got = env.invalidate(entryBytes([cmd]), { hwpt_id: viommu2 });
    expect([got.rc, got.entryNum]).toEqual([0, 1]);
    expect(got.queued[0]?.[0]).toBe(cmd[0] | (BigInt(vmid2) << 32n));
    close(env);
  });

  it('TLBI_NSNH_ALL becomes TLBI_NH_ALL of the VMID with word 1 zero, whatever else the guest set', () => {
    const env = vsmmu();
    const got = env.run([withOp(OP.TLBI_NSNH_ALL, JUNK0, JUNK1), [BigInt(OP.TLBI_NSNH_ALL), 0n]]);
    expect([got.rc, got.entryNum]).toEqual([0, 2]);
    const nhAll: Cmd = [BigInt(OP.TLBI_NH_ALL) | (BigInt(env.vmid) << 32n), 0n];
    expect(withSyncs(got.queued)).toEqual([nhAll, nhAll, null]);
    close(env);
  });

  it('ATC_INV / CFGI_CD / CFGI_CD_ALL: the vSID (63:32) becomes the device’s pSID; every other bit is the guest’s', () => {
    const env = vsmmu();
    const cmds = [OP.ATC_INV, OP.CFGI_CD, OP.CFGI_CD_ALL].flatMap((op) => [
      sidCmd(op, NIC_VSID, JUNK0, JUNK1),
      sidCmd(op, GPU_VSID, 0x5a5a_5a00n, 1n),
    ]);
    const got = env.run(cmds);
    expect([got.rc, got.entryNum]).toEqual([0, 6]);
    expect(got.queued.slice(0, 6)).toEqual(
      cmds.map(([w0, w1]) => [
        (w0 & ~SID_FIELD) | (BigInt(env.psidOf(Number(w0 >> 32n)) as number) << 32n),
        w1,
      ]),
    );
    expect(
      env.smmu
        .recentCommands()
        .slice(-7, -1)
        .map((c) => [c.name, c.fields.SID]),
    ).toEqual([
      ['ATC_INV', NIC_PSID],
      ['ATC_INV', GPU_PSID],
      ['CFGI_CD', NIC_PSID],
      ['CFGI_CD', GPU_PSID],
      ['CFGI_CD_ALL', NIC_PSID],
      ['CFGI_CD_ALL', GPU_PSID],
    ]);
    close(env);
  });

  it('an unknown vSID → EIO with entry_num = its index, and the good commands before it in the batch are not issued', () => {
    const env = vsmmu();
    const good = withOp(OP.TLBI_NH_ALL, 0n, 0n);
    for (const [op, vsid] of [
      [OP.ATC_INV, NIC_PSID], // the physical SID is no vSID
      [OP.CFGI_CD, 0],
      [OP.CFGI_CD_ALL, 0xffff_ffff],
      [OP.CFGI_CD, NIC_VSID + 1],
    ] as const) {
      const got = env.run([good, good, sidCmd(op, vsid), good]);
      expect([got.rc, got.entryNum]).toEqual([-EIO, 2]);
      expect(got.queued).toEqual([]);
      expect(got.reason).toMatch(/entry 2/);
      expect(got.reason).toMatch(/vSID|vDEVICE/);
    }
    // A destroyed vDEVICE's vSID is unknown from then on.
    expect(env.run([sidCmd(OP.CFGI_CD_ALL, GPU_VSID)]).rc).toBe(0);
    expect(destroy(env.proc, env.fd, env.gpuVdev)).toBe(0);
    const gone = env.run([sidCmd(OP.CFGI_CD_ALL, GPU_VSID)]);
    expect([gone.rc, gone.entryNum, gone.queued]).toEqual([-EIO, 0, []]);
    close(env);
  });

  it('CFGI_STE, CFGI_STE_RANGE, CMD_SYNC, TLBI_S2_IPA, TLBI_S12_VMALL, TLBI_EL2_ALL, PRI_RESP, RESUME, STALL_TERM, PREFETCH_CONFIG and unknown opcodes → EIO with entry_num = the index', () => {
    const env = vsmmu();
    const good = sidCmd(OP.ATC_INV, NIC_VSID);
    const refused = [
      OP.CFGI_STE,
      OP.CFGI_STE_RANGE,
      OP.CMD_SYNC,
      OP.TLBI_S2_IPA,
      OP.TLBI_S12_VMALL,
      OP.TLBI_EL2_ALL,
      OP.PRI_RESP,
      OP.RESUME,
      OP.STALL_TERM,
      OP.PREFETCH_CONFIG,
      0x00,
      0x7f,
      0xff,
    ];
    refused.forEach((op, k) => {
      // The refused command carries a known vSID: naming a device does not make it allowed.
      const at = k % 4;
      const cmds = [...Array(at).fill(good), sidCmd(op, NIC_VSID), good];
      const got = env.run(cmds);
      expect([op, got.rc, got.entryNum]).toEqual([op, -EIO, at]);
      expect(got.queued).toEqual([]);
      expect(got.reason).toContain(`0x${op.toString(16)}`);
    });
    close(env);
  });

  it('batches of 63: a refusal at index k issues the full batches before it (each with its CMD_SYNC) and drops the unfinished one; entry_num = k', () => {
    const env = vsmmu();
    const good = (i: number): Cmd => withOp(OP.TLBI_NH_VA, BigInt(i) << 48n, BigInt(i) << 12n);
    const bad = sidCmd(OP.CFGI_STE, NIC_VSID);
    for (const k of [0, 1, 62, 63, 64, 70, 125, 126, 127]) {
      const cmds = [...Array.from({ length: k }, (_, i) => good(i)), bad, good(999)];
      const got = env.run(cmds);
      expect([k, got.rc, got.entryNum]).toEqual([k, -EIO, k]);
      const batches = Math.floor(k / BATCH);
      expect(withSyncs(got.queued)).toEqual(referenceInvalidate(cmds, env.vmid, env.psidOf).issued);
      expect(got.queued).toHaveLength(batches * (BATCH + 1));
      // The last command issued is the last of a full batch, i.e. command batches*63 - 1.
      if (batches > 0) {
        expect(Number((got.queued.at(-2)?.[0] ?? 0n) & 0xffn)).toBe(OP.TLBI_NH_VA);
        expect((got.queued.at(-2)?.[0] ?? 0n) >> 48n).toBe(BigInt(batches * BATCH - 1));
      }
    }
    // All good: 130 commands go out as 63 + 63 + 4, three syncs.
    const all = Array.from({ length: 130 }, (_, i) => good(i));
    const ok = env.run(all);
    expect([ok.rc, ok.entryNum]).toEqual([0, 130]);
    const syncAt = ok.queued.flatMap((c, i) => (Number(c[0] & 0xffn) === OP.CMD_SYNC ? [i] : []));
    expect(syncAt).toEqual([63, 127, 132]);
    expect(withSyncs(ok.queued)).toEqual(referenceInvalidate(all, env.vmid, env.psidOf).issued);
    close(env);
  });
});

describe('SMMUv3 vIOMMU invalidation: the array rules', () => {
  it('entry_num 0 → EINVAL (the full-array copy refuses an empty array; no zero-length probe on SMMUv3), also with a NULL pointer; nothing issued', () => {
    const env = vsmmu();
    const e = env.invalidate(new Uint8Array(0));
    expect([e.rc, e.entryNum, e.queued]).toEqual([-EINVAL, 0, []]);
    expect(e.reason).toMatch(/entry_num 0|empty/);
    const n = env.invalidate(new Uint8Array(0), { data_uptr: 0n, entry_len: 0 });
    expect([n.rc, n.entryNum, n.queued]).toEqual([-EINVAL, 0, []]);
    close(env);
  });

  it('a wrong data_type → EINVAL with entry_num 0 (also with entry_num 0), nothing issued', () => {
    const env = vsmmu();
    const cmds = entryBytes([withOp(OP.TLBI_NH_ALL, 0n, 0n)]);
    for (const dataType of [
      IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
      2,
      IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
    ]) {
      const got = env.invalidate(cmds, { data_type: dataType });
      expect([got.rc, got.entryNum, got.queued]).toEqual([-EINVAL, 0, []]);
      expect(got.reason).toMatch(/ARM_SMMUV3/);
      const probe = env.invalidate(new Uint8Array(0), { data_type: dataType });
      expect([probe.rc, probe.entryNum]).toEqual([-EINVAL, 0]);
    }
    close(env);
  });

  it('entry_len below 16 is zero-extended (8: word 1 is 0; 1: only the opcode byte) and accepted', () => {
    const env = vsmmu();
    const cmds = [withOp(OP.TLBI_NH_VA, JUNK0, JUNK1), sidCmd(OP.ATC_INV, NIC_VSID, 0n, U64)];
    const short = env.invalidate(entryBytes(cmds, 8), { entry_len: 8, entry_num: 2 });
    expect([short.rc, short.entryNum]).toEqual([0, 2]);
    expect(withSyncs(short.queued)).toEqual([
      [((cmds[0] as Cmd)[0] & ~VMID_FIELD) | (BigInt(env.vmid) << 32n), 0n],
      [(BigInt(NIC_PSID) << 32n) | BigInt(OP.ATC_INV), 0n],
      null,
    ]);
    const one = env.invalidate(new Uint8Array([OP.TLBI_NSNH_ALL, OP.TLBI_NH_ASID]), {
      entry_len: 1,
      entry_num: 2,
    });
    expect([one.rc, one.entryNum]).toEqual([0, 2]);
    const vmid = BigInt(env.vmid) << 32n;
    expect(withSyncs(one.queued)).toEqual([
      [BigInt(OP.TLBI_NH_ALL) | vmid, 0n],
      [BigInt(OP.TLBI_NH_ASID) | vmid, 0n],
      null,
    ]);
    close(env);
  });

  it('entry_len 24: zero tails are accepted at a 24-byte stride; a non-zero tail in any entry → E2BIG with entry_num 0 and nothing issued', () => {
    const env = vsmmu();
    const cmds = [withOp(OP.TLBI_NH_ASID, 3n << 48n, 0n), sidCmd(OP.CFGI_CD, NIC_VSID, 0n, 1n)];
    const zero = env.invalidate(entryBytes(cmds, 24), { entry_len: 24, entry_num: 2 });
    expect([zero.rc, zero.entryNum]).toEqual([0, 2]);
    expect(withSyncs(zero.queued)).toEqual(referenceInvalidate(cmds, env.vmid, env.psidOf).issued);
    for (const dirty of [0, 1]) {
      const bytes = entryBytes(cmds, 24, (i) => (i === dirty ? 0x01 : 0));
      const got = env.invalidate(bytes, { entry_len: 24, entry_num: 2 });
      expect([got.rc, got.entryNum, got.queued]).toEqual([-E2BIG, 0, []]);
      expect(got.reason).toMatch(new RegExp(`entry ${dirty}`));
    }
    // The tail is checked before any command is looked at: a refused command behind it too.
    const both = entryBytes([cmds[0] as Cmd, sidCmd(OP.CFGI_STE, 0)], 24, (i) => i);
    expect(env.invalidate(both, { entry_len: 24, entry_num: 2 }).rc).toBe(-E2BIG);
    close(env);
  });

  it('the core’s checks: a NULL pointer or entry_len 0 with entry_num > 0 → EINVAL; __reserved → EOPNOTSUPP; the nest parent → EINVAL; no object → ENOENT; entry_num 0 each time', () => {
    const env = vsmmu();
    const cmds = entryBytes([withOp(OP.TLBI_NH_ALL, 0n, 0n)]);
    const cases: [InvFields, number][] = [
      [{ data_uptr: 0n }, -EINVAL],
      [{ entry_len: 0 }, -EINVAL],
      [{ __reserved: 1 }, -EOPNOTSUPP],
      [{ hwpt_id: env.parent }, -EINVAL],
      [{ hwpt_id: 9999 }, -ENOENT],
    ];
    for (const [fields, errno] of cases) {
      const got = env.invalidate(cmds, fields);
      expect([fields, got.rc, got.entryNum, got.queued]).toEqual([fields, errno, 0, []]);
      expect(got.reason).not.toBe('');
    }
    close(env);
  });

  it('an unreadable array → EFAULT with entry_num 0, even when only its last entry is unreadable (the whole array is copied before any command runs)', () => {
    const env = vsmmu();
    const good = withOp(OP.TLBI_NH_ALL, 0n, 0n);
    const nowhere = env.invalidate(entryBytes([good]), { data_uptr: 0xdead_0000n });
    expect([nowhere.rc, nowhere.entryNum, nowhere.queued]).toEqual([-EFAULT, 0, []]);
    // Three entries whose third runs past the end of a one-page mapping.
    const page = env.proc.mmap(2n * PAGE);
    expect(env.proc.munmap(page + PAGE, PAGE)).toBe(0);
    const at = page + PAGE - 2n * BigInt(ENTRY);
    expect(env.proc.writeMemory(at, entryBytes([good, good]))).toBe(0);
    const edge = env.invalidate(new Uint8Array(0), { data_uptr: at, entry_num: 3 });
    expect([edge.rc, edge.entryNum, edge.queued]).toEqual([-EFAULT, 0, []]);
    expect(edge.reason).toMatch(/cannot be read/);
    // Two entries that fit are fine.
    const fits = env.invalidate(new Uint8Array(0), { data_uptr: at, entry_num: 2 });
    expect([fits.rc, fits.entryNum]).toEqual([0, 2]);
    // The same at a 24-byte stride (copied entry by entry): still nothing runs.
    const at24 = page + PAGE - 48n;
    expect(env.proc.writeMemory(at24, entryBytes([good, good], 24))).toBe(0);
    const edge24 = env.invalidate(new Uint8Array(0), {
      data_uptr: at24,
      entry_len: 24,
      entry_num: 3,
    });
    expect([edge24.rc, edge24.entryNum, edge24.queued]).toEqual([-EFAULT, 0, []]);
    expect(edge24.reason).toMatch(/entry 2/);
    close(env);
  });

  it('property: random command arrays (any opcode, known and unknown vSIDs, 0-140 entries, entry_len 16/8/24) give the reference converter’s errno, entry_num and queued commands', () => {
    const env = vsmmu();
    const u64 = fc.bigInt({ min: 0n, max: U64 });
    const vsid = fc.oneof(
      fc.constant(NIC_VSID),
      fc.constant(GPU_VSID),
      fc.constant(NIC_PSID),
      fc.integer({ min: 0, max: 0xffff_ffff }),
    );
    const allowedTlbi = fc.constantFrom(
      OP.TLBI_NH_VA,
      OP.TLBI_NH_VAA,
      OP.TLBI_NH_ALL,
      OP.TLBI_NH_ASID,
      OP.TLBI_NSNH_ALL,
    );
    // Mostly commands the guest may send (so arrays get past a batch), with 0-2
    // arbitrary ones (any opcode, any vSID) dropped in at random places.
    const allowed: fc.Arbitrary<Cmd> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.tuple(allowedTlbi, u64, u64).map(([op, a, b]) => withOp(op, a, b)),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            fc.constantFrom(OP.ATC_INV, OP.CFGI_CD, OP.CFGI_CD_ALL),
            fc.constantFrom(NIC_VSID, GPU_VSID),
            u64,
            u64,
          )
          .map(([op, s, lo, w1]) => sidCmd(op, s, lo, w1)),
      },
    );
    const anything: fc.Arbitrary<Cmd> = fc.oneof(
      fc.tuple(fc.integer({ min: 0, max: 255 }), u64, u64).map(([op, a, b]) => withOp(op, a, b)),
      fc
        .tuple(fc.constantFrom(OP.ATC_INV, OP.CFGI_CD, OP.CFGI_CD_ALL), vsid, u64, u64)
        .map(([op, s, lo, w1]) => sidCmd(op, s, lo, w1)),
    );
    const commands = fc
      .tuple(
        fc.array(allowed, { maxLength: 140, size: 'max' }),
        fc.array(fc.tuple(anything, fc.nat()), { maxLength: 2 }),
      )
      .map(([base, extra]) => {
        const out = [...base];
        for (const [c, at] of extra) out.splice(at % (out.length + 1), 0, c);
        return out;
      });
    const entryLen = fc.constantFrom(16, 16, 8, 24);
    const seen = { runs: 0, refusedPastBatch: 0, allGoodPastBatch: 0, e2big: 0 };
    fc.assert(
      fc.property(
        commands,
        entryLen,
        fc.integer({ min: -20, max: 140 }),
        (cmds, len, dirtyTail) => {
          const tail = len === 24 ? (i: number) => (i === dirtyTail ? 0x80 : 0) : undefined;
          const got = env.invalidate(entryBytes(cmds, len, tail), {
            entry_len: len,
            entry_num: cmds.length,
          });
          // What the kernel reads of each entry: 8-byte entries have word 1 zero.
          const read = cmds.map(([w0, w1]): Cmd => [w0, len === 8 ? 0n : w1]);
          const dirty = len === 24 && dirtyTail >= 0 && dirtyTail < cmds.length;
          const want: Expected = dirty
            ? { rc: -E2BIG, entryNum: 0, issued: [] }
            : referenceInvalidate(read, env.vmid, env.psidOf);
          expect({ rc: got.rc, entryNum: got.entryNum, issued: withSyncs(got.queued) }).toEqual(
            want,
          );
          if (got.rc < 0) expect(got.reason).not.toBe('');
          seen.runs++;
          if (got.rc === -EIO && got.entryNum >= BATCH) seen.refusedPastBatch++;
          if (got.rc === 0 && got.entryNum > BATCH) seen.allGoodPastBatch++;
          if (got.rc === -E2BIG) seen.e2big++;
        },
      ),
      { numRuns: 200, seed: 0x5eed },
    );
    // The runs reached the interesting cases.
    expect(seen.runs).toBe(200);
    expect(seen.refusedPastBatch).toBeGreaterThan(5);
    expect(seen.allGoodPastBatch).toBeGreaterThan(5);
    expect(seen.e2big).toBeGreaterThan(5);
    close(env);
  });
});
