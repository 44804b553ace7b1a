/**
 * IOMMU_GET_HW_INFO (kernel-semantics.md 2.15, 148–154): the selftest's
 * iommufd_ioas/get_hw_info and device_dirty_capability on mock devices (the
 * data_len sizing, the zeroed tail, INPUT_TYPE, PASID width, the dirty
 * capability, flags and __reserved), then every IOMMU model behind a VFIO
 * device: VT-d (iommu_hw_info_vtd with the model's CAP/ECAP), SMMUv3
 * (iommu_hw_info_arm_smmuv3 with its ID registers) and AMD (no hw_info op in
 * 6.17: type NONE, no data), each with out_capabilities and
 * out_max_pasid_log2 following the IOMMU and device configuration.
 */
import {
  E2BIG,
  EFAULT,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_CAP_PCI_PASID_EXEC,
  IOMMU_HW_CAP_PCI_PASID_PRIV,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_NONE,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_PASID_WIDTH,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type HostDeviceConfig, type Process } from '../src/index.js';
import { ioasAlloc, mockDomain, PAGE, setup } from './helpers.js';
import { vfioBind } from './helpers-c.js';

const INFO_SIZE = structs.iommu_hw_info.sizeof;
/** offsetofend(struct iommu_hw_info, __reserved): the smallest size the dispatcher takes. */
const INFO_MIN = 32;
const SELFTEST_LEN = structs.iommu_test_hw_info.sizeof;
const VTD_LEN = structs.iommu_hw_info_vtd.sizeof;
const SMMU_LEN = structs.iommu_hw_info_arm_smmuv3.sizeof;
const DIRTY = BigInt(IOMMU_HW_CAP_DIRTY_TRACKING);
/** What the tests put in every output field beforehand, to see what is written. */
const SENTINEL = 0x5a5a5a5a;
const FILL = 0xa5;

type InfoFields = Partial<ReturnType<typeof structs.iommu_hw_info.decode>>;

/** IOMMU_GET_HW_INFO; returns rc and the struct as it came back (outputs preset to sentinels). */
function hwInfo(
  proc: Process,
  fd: number,
  fields: InfoFields,
): { rc: number; out: ReturnType<typeof structs.iommu_hw_info.decode> } {
  // in_data_type and out_data_type share their bytes: the sentinel only when no input type is given.
  const b = structs.iommu_hw_info.encode({
    size: INFO_SIZE,
    ...(fields.in_data_type === undefined ? { out_data_type: SENTINEL } : {}),
    out_max_pasid_log2: 0x5a,
    out_capabilities: 0x5a5a5a5a5a5a5a5an,
    ...fields,
  });
  const rc = proc.ioctl(fd, IOMMU_GET_HW_INFO, b);
  return { rc, out: structs.iommu_hw_info.decode(b) };
}

/** A user buffer of `length` bytes filled with FILL, with `guard` more FILL bytes after it. */
function userBuffer(proc: Process, length: number, guard = 16): bigint {
  const va = proc.mmap(BigInt(Math.max(Number(PAGE), length + guard)));
  expect(proc.writeMemory(va, new Uint8Array(length + guard).fill(FILL))).toBe(0);
  return va;
}

function bytesAt(proc: Process, va: bigint, length: number): Uint8Array {
  const got = proc.readMemory(va, length);
  if (got === null) throw new Error(`cannot read ${length} bytes at ${va}`);
  return got;
}

/** The iommufd_ioas fixture with one mock device and a PASID-capable one. */
function mockFixture() {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const dev = mockDomain(proc, fd, ioas);
  const pasidDev = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID);
  expect([dev.rc, pasidDev.rc]).toEqual([0, 0]);
  return { host, proc, fd, ioas, dev, pasidDev };
}

function closeClean(host: Host, proc: Process, fd: number): void {
  expect(proc.close(fd)).toBe(0);
  expect(host.pinnedPages()).toBe(0);
  expect(host.internalErrors).toBe(0);
}

describe('2.15 IOMMU_GET_HW_INFO on mock devices', () => {
  it('148: a dev_id that is not a bound device → ENOENT, nothing written back (also with no mock device at all)', () => {
    const { host, proc, fd, ioas, dev } = mockFixture();
    const buf = userBuffer(proc, SELFTEST_LEN);
    for (const notDev of [0, 99, ioas, dev.stdevId, dev.hwptId]) {
      const got = hwInfo(proc, fd, { dev_id: notDev, data_len: SELFTEST_LEN, data_uptr: buf });
      expect(got.rc).toBe(-ENOENT);
      expect(got.out).toMatchObject({
        data_len: SELFTEST_LEN,
        out_data_type: SENTINEL,
        out_capabilities: 0x5a5a5a5a5a5a5a5an,
      });
    }
    expect(proc.lastError()?.name).toBe('ENOENT');
    expect(bytesAt(proc, buf, SELFTEST_LEN)).toEqual(new Uint8Array(SELFTEST_LEN).fill(FILL));
    closeClean(host, proc, fd);

    // no_domain: the fixture's device_id is 0.
    const bare = setup();
    ioasAlloc(bare.proc, bare.fd);
    const larger = userBuffer(bare.proc, 16);
    for (const len of [SELFTEST_LEN, 16]) {
      expect(hwInfo(bare.proc, bare.fd, { dev_id: 0, data_len: len, data_uptr: larger }).rc).toBe(
        -ENOENT,
      );
    }
    closeClean(bare.host, bare.proc, bare.fd);
  });

  it('149: data_len 0 with a NULL pointer → 0, data_len written back as 8, out_data_type 0xfeedbeef; an exact buffer gets {flags 0, test_reg 0xdeadbeef}', () => {
    const { host, proc, fd, dev } = mockFixture();
    const empty = hwInfo(proc, fd, { dev_id: dev.idevId, data_len: 0, data_uptr: 0n });
    expect(empty.rc).toBe(0);
    expect(empty.out).toMatchObject({
      data_len: SELFTEST_LEN,
      out_data_type: IOMMU_HW_INFO_TYPE_SELFTEST,
      out_max_pasid_log2: 0,
      __reserved: [0, 0, 0],
      out_capabilities: DIRTY,
      flags: 0,
      dev_id: dev.idevId,
      data_uptr: 0n,
    });
    const buf = userBuffer(proc, SELFTEST_LEN);
    const exact = hwInfo(proc, fd, { dev_id: dev.idevId, data_len: SELFTEST_LEN, data_uptr: buf });
    expect(exact.rc).toBe(0);
    expect(exact.out.data_len).toBe(SELFTEST_LEN);
    expect(structs.iommu_test_hw_info.decode(bytesAt(proc, buf, SELFTEST_LEN))).toEqual({
      flags: 0,
      test_reg: IOMMU_HW_INFO_SELFTEST_REGVAL,
    });
    // Nothing past the buffer is touched.
    expect(bytesAt(proc, buf + BigInt(SELFTEST_LEN), 16)).toEqual(new Uint8Array(16).fill(FILL));
    closeClean(host, proc, fd);
  });

  it('150: a larger buffer has its bytes past 8 zeroed (even a 3-page one); a 4-byte buffer gets only `flags`; an unwritable buffer → EFAULT with nothing written back', () => {
    const { host, proc, fd, dev } = mockFixture();
    const data = structs.iommu_test_hw_info.encode({
      flags: 0,
      test_reg: IOMMU_HW_INFO_SELFTEST_REGVAL,
    });
    // buffer_larger: the info and a trailing u64.
    const larger = userBuffer(proc, 16);
    const got = hwInfo(proc, fd, { dev_id: dev.idevId, data_len: 16, data_uptr: larger });
    expect(got.rc).toBe(0);
    expect(got.out.data_len).toBe(SELFTEST_LEN);
    const want = new Uint8Array(16);
    want.set(data);
    expect(bytesAt(proc, larger, 16)).toEqual(want);
    expect(bytesAt(proc, larger + 16n, 16)).toEqual(new Uint8Array(16).fill(FILL));
    // A big buffer is cleared to its end.
    const bigLen = 3 * 4096;
    const big = userBuffer(proc, bigLen);
    expect(hwInfo(proc, fd, { dev_id: dev.idevId, data_len: bigLen, data_uptr: big }).rc).toBe(0);
    const bigBytes = bytesAt(proc, big, bigLen + 16);
    expect(bigBytes.subarray(0, SELFTEST_LEN)).toEqual(data);
    expect(bigBytes.subarray(SELFTEST_LEN, bigLen).every((b) => b === 0)).toBe(true);
    expect(bigBytes.subarray(bigLen).every((b) => b === FILL)).toBe(true);
    // buffer_smaller: only the first 4 bytes (flags) are written; data_len still says 8.
    const smaller = userBuffer(proc, 4);
    const small = hwInfo(proc, fd, { dev_id: dev.idevId, data_len: 4, data_uptr: smaller });
    expect(small.rc).toBe(0);
    expect(small.out.data_len).toBe(SELFTEST_LEN);
    expect(bytesAt(proc, smaller, 8)).toEqual(new Uint8Array([0, 0, 0, 0, FILL, FILL, FILL, FILL]));
    // EFAULT: a NULL pointer with a length, or a buffer whose tail is not mapped.
    const edge = proc.mmap(2n * PAGE);
    expect(proc.munmap(edge + PAGE, PAGE)).toBe(0);
    for (const [uptr, len] of [
      [0n, SELFTEST_LEN],
      [edge + PAGE - 4n, SELFTEST_LEN],
      [edge + PAGE - 8n, 16],
    ] as const) {
      const failed = hwInfo(proc, fd, { dev_id: dev.idevId, data_len: len, data_uptr: uptr });
      expect(failed.rc).toBe(-EFAULT);
      expect(failed.out).toMatchObject({ data_len: len, out_data_type: SENTINEL });
    }
    expect(proc.lastError()?.name).toBe('EFAULT');
    closeClean(host, proc, fd);
  });

  it('the struct in read-only memory: the data reaches the user buffer, then the write-back fails → EFAULT', () => {
    const { host, proc, fd, dev } = mockFixture();
    const buf = userBuffer(proc, SELFTEST_LEN);
    const mfd = proc.memfdCreate('arg', PAGE);
    const rw = proc.mmap(PAGE, { fd: mfd });
    const ro = proc.mmap(PAGE, { fd: mfd, readOnly: true });
    const bytes = structs.iommu_hw_info.encode({
      size: INFO_SIZE,
      dev_id: dev.idevId,
      data_len: SELFTEST_LEN,
      data_uptr: buf,
    });
    expect(proc.writeMemory(rw, bytes)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_GET_HW_INFO, ro)).toBe(-EFAULT);
    expect(structs.iommu_test_hw_info.decode(bytesAt(proc, buf, SELFTEST_LEN)).test_reg).toBe(
      IOMMU_HW_INFO_SELFTEST_REGVAL,
    );
    expect(structs.iommu_hw_info.decode(bytesAt(proc, ro, INFO_SIZE)).out_data_type).toBe(0);
    expect(proc.ioctl(fd, IOMMU_GET_HW_INFO, rw)).toBe(0);
    expect(structs.iommu_hw_info.decode(bytesAt(proc, rw, INFO_SIZE)).out_data_type).toBe(
      IOMMU_HW_INFO_TYPE_SELFTEST,
    );
    expect(proc.close(mfd)).toBe(0);
    closeClean(host, proc, fd);
  });

  it("151: IOMMU_HW_INFO_FLAG_INPUT_TYPE with SELFTEST + 1 (or another driver's type) → EOPNOTSUPP; with SELFTEST or DEFAULT → 0; without the flag in_data_type is ignored", () => {
    const { host, proc, fd, dev } = mockFixture();
    const buf = userBuffer(proc, SELFTEST_LEN);
    const ask = (flags: number, inType: number) =>
      hwInfo(proc, fd, {
        dev_id: dev.idevId,
        flags,
        data_len: SELFTEST_LEN,
        data_uptr: buf,
        in_data_type: inType,
      });
    for (const bad of [
      IOMMU_HW_INFO_TYPE_SELFTEST + 1,
      IOMMU_HW_INFO_TYPE_INTEL_VTD,
      IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
    ]) {
      const got = ask(IOMMU_HW_INFO_FLAG_INPUT_TYPE, bad);
      expect(got.rc).toBe(-EOPNOTSUPP);
      // The union still holds the input: nothing was written back.
      expect(got.out.in_data_type).toBe(bad);
    }
    expect(bytesAt(proc, buf, SELFTEST_LEN)).toEqual(new Uint8Array(SELFTEST_LEN).fill(FILL));
    for (const good of [IOMMU_HW_INFO_TYPE_SELFTEST, IOMMU_HW_INFO_TYPE_DEFAULT]) {
      const got = ask(IOMMU_HW_INFO_FLAG_INPUT_TYPE, good);
      expect(got.rc).toBe(0);
      expect(got.out.out_data_type).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    }
    const ignored = ask(0, IOMMU_HW_INFO_TYPE_SELFTEST + 1);
    expect(ignored.rc).toBe(0);
    expect(ignored.out.out_data_type).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    expect(structs.iommu_test_hw_info.decode(bytesAt(proc, buf, SELFTEST_LEN)).test_reg).toBe(
      IOMMU_HW_INFO_SELFTEST_REGVAL,
    );
    // The type check needs the device: an unknown device is still ENOENT.
    expect(
      hwInfo(proc, fd, {
        dev_id: 99,
        flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE,
        in_data_type: IOMMU_HW_INFO_TYPE_SELFTEST + 1,
      }).rc,
    ).toBe(-ENOENT);
    closeClean(host, proc, fd);
  });

  it('152/153: out_max_pasid_log2 is 20 for a PASID mock device and 0 otherwise; out_capabilities has DIRTY_TRACKING except for a NO_DIRTY device', () => {
    const { host, proc, fd, ioas, dev, pasidDev } = mockFixture();
    const noDirty = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_NO_DIRTY);
    const huge = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_HUGE_IOVA);
    const both = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID | MOCK_FLAGS_DEVICE_NO_DIRTY);
    const report = (idev: number) => {
      const got = hwInfo(proc, fd, { dev_id: idev });
      expect(got.rc).toBe(0);
      return [got.out.out_max_pasid_log2, got.out.out_capabilities];
    };
    expect(report(dev.idevId)).toEqual([0, DIRTY]);
    expect(report(pasidDev.idevId)).toEqual([MOCK_PASID_WIDTH, DIRTY]);
    expect(report(noDirty.idevId)).toEqual([0, 0n]);
    expect(report(huge.idevId)).toEqual([0, DIRTY]);
    expect(report(both.idevId)).toEqual([MOCK_PASID_WIDTH, 0n]);
    closeClean(host, proc, fd);
  });

  it('154: unknown flags or a nonzero __reserved byte → EOPNOTSUPP, before the device lookup; the size rules of the dispatcher (31 → EINVAL, 32 → no out_capabilities, a nonzero tail → E2BIG)', () => {
    const { host, proc, fd, dev } = mockFixture();
    for (const flags of [2, 0x80000000, IOMMU_HW_INFO_FLAG_INPUT_TYPE | 4]) {
      for (const devId of [dev.idevId, 99]) {
        expect(hwInfo(proc, fd, { dev_id: devId, flags }).rc).toBe(-EOPNOTSUPP);
      }
    }
    for (const reserved of [
      [1, 0, 0],
      [0, 0x80, 0],
      [0, 0, 0xff],
    ]) {
      for (const devId of [dev.idevId, 99]) {
        const got = hwInfo(proc, fd, { dev_id: devId, __reserved: reserved });
        expect(got.rc).toBe(-EOPNOTSUPP);
        expect(got.out.out_data_type).toBe(SENTINEL);
      }
    }
    expect(proc.lastError()?.name).toBe('EOPNOTSUPP');
    // Size: the struct is 40 bytes, the minimum is offsetofend(__reserved) = 32.
    const raw = (size: number, tail = 0) => {
      const b = new Uint8Array(INFO_SIZE + 8).fill(0);
      b.set(structs.iommu_hw_info.encode({ size, dev_id: dev.idevId }));
      b.fill(0x77, 32, 40); // out_capabilities as the caller left it
      b[INFO_SIZE] = tail;
      return b;
    };
    const short = raw(INFO_MIN - 1);
    expect(proc.ioctl(fd, IOMMU_GET_HW_INFO, short)).toBe(-EINVAL);
    const min = raw(INFO_MIN);
    expect(proc.ioctl(fd, IOMMU_GET_HW_INFO, min)).toBe(0);
    const minOut = structs.iommu_hw_info.decode(min);
    expect(minOut.out_data_type).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    expect(minOut.data_len).toBe(SELFTEST_LEN);
    // Only `size` bytes are copied back: out_capabilities keeps what the caller had there.
    expect(minOut.out_capabilities).toBe(0x7777777777777777n);
    expect(proc.ioctl(fd, IOMMU_GET_HW_INFO, raw(INFO_SIZE + 8, 1))).toBe(-E2BIG);
    const longer = raw(INFO_SIZE + 8, 0);
    expect(proc.ioctl(fd, IOMMU_GET_HW_INFO, longer)).toBe(0);
    expect(structs.iommu_hw_info.decode(longer).out_capabilities).toBe(DIRTY);
    closeClean(host, proc, fd);
  });
});

// ---- the modelled IOMMUs ---------------------------------------------------------------

type DeviceExtras = Partial<Omit<HostDeviceConfig, 'name' | 'iommu'>>;

/**
 * A host with one IOMMU and the given devices (named 0000:00:0N.0 unless
 * given a name), all bound through VFIO to one /dev/iommu.
 */
function vfioHost(
  iommu: { model: 'vtd' | 'smmuv3' | 'amd'; pasidBits?: number; dirtyTracking?: boolean },
  devices: (DeviceExtras & { name?: string })[],
) {
  const name = `${iommu.model}0`;
  const host = createHost({
    iommus: [{ name, ...iommu }],
    devices: devices.map((d, i) => ({ name: `0000:00:0${i + 2}.0`, ...d, iommu: name })),
  });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const devids = devices.map((_, i) => {
    const dev = proc.open(`/dev/vfio/devices/vfio${i}`);
    const bound = vfioBind(proc, dev, fd);
    expect(bound.rc).toBe(0);
    return bound.devid;
  });
  const instance = host.iommus.get(name);
  if (instance === undefined) throw new Error('no IOMMU');
  return { host, proc, fd, devids, instance };
}

function infoOf(proc: Process, fd: number, devId: number, dataLen: number) {
  const buf = userBuffer(proc, dataLen);
  const got = hwInfo(proc, fd, { dev_id: devId, data_len: dataLen, data_uptr: buf });
  return { ...got, data: bytesAt(proc, buf, dataLen), buf };
}

describe('2.15 on the modelled IOMMUs (VFIO devices)', () => {
  it('VT-d: type INTEL_VTD with iommu_hw_info_vtd = {ERRATA_772415_SPR17, CAP_REG, ECAP_REG} of the model; DIRTY_TRACKING from ECAP.SSADS; max_pasid_log2 = min(device PASID bits, ECAP.PSS + 1)', () => {
    const { host, proc, fd, devids, instance } = vfioHost({ model: 'vtd' }, [
      { pasidBits: 20 },
      {},
      { pasidBits: 8 },
    ]);
    const regs = instance.registers();
    const ecap = instance.decodedRegisters().ECAP as Record<string, number>;
    const pss = ecap.PSS as number;
    expect(ecap.SSADS).toBe(1);
    expect(ecap.PASID).toBe(1);
    const widths = [Math.min(20, pss + 1), 0, Math.min(8, pss + 1)];
    devids.forEach((devId, i) => {
      const got = infoOf(proc, fd, devId, VTD_LEN);
      expect(got.rc).toBe(0);
      expect(got.out).toMatchObject({
        data_len: VTD_LEN,
        out_data_type: IOMMU_HW_INFO_TYPE_INTEL_VTD,
        out_max_pasid_log2: widths[i],
        out_capabilities: DIRTY,
      });
      expect(structs.iommu_hw_info_vtd.decode(got.data)).toEqual({
        flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
        __reserved: 0,
        cap_reg: regs.CAP,
        ecap_reg: regs.ECAP,
      });
      // The device model has no PASID EXEC/PRIV capability.
      expect(
        got.out.out_capabilities &
          BigInt(IOMMU_HW_CAP_PCI_PASID_EXEC | IOMMU_HW_CAP_PCI_PASID_PRIV),
      ).toBe(0n);
    });
    // Sizing as on the mock: 0/NULL, then a short and a long buffer.
    const devId = devids[0] as number;
    expect(hwInfo(proc, fd, { dev_id: devId }).out.data_len).toBe(VTD_LEN);
    const short = infoOf(proc, fd, devId, 8);
    expect(
      structs.iommu_hw_info_vtd.decode(new Uint8Array([...short.data, ...new Uint8Array(16)])),
    ).toMatchObject({ flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, cap_reg: 0n });
    const long = infoOf(proc, fd, devId, VTD_LEN + 8);
    expect(long.data.subarray(VTD_LEN)).toEqual(new Uint8Array(8));
    // INPUT_TYPE: the driver takes DEFAULT or INTEL_VTD only.
    const ask = (inType: number) =>
      hwInfo(proc, fd, {
        dev_id: devId,
        flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE,
        in_data_type: inType,
      }).rc;
    expect(ask(IOMMU_HW_INFO_TYPE_INTEL_VTD)).toBe(0);
    expect(ask(IOMMU_HW_INFO_TYPE_DEFAULT)).toBe(0);
    expect(ask(IOMMU_HW_INFO_TYPE_ARM_SMMUV3)).toBe(-EOPNOTSUPP);
    expect(ask(IOMMU_HW_INFO_TYPE_SELFTEST)).toBe(-EOPNOTSUPP);
    closeClean(host, proc, fd);
  });

  it('VT-d without dirty tracking or PASIDs: out_capabilities 0 and out_max_pasid_log2 0 for every device', () => {
    const { host, proc, fd, devids, instance } = vfioHost(
      { model: 'vtd', dirtyTracking: false, pasidBits: 0 },
      [{ pasidBits: 20 }],
    );
    const ecap = instance.decodedRegisters().ECAP as Record<string, number>;
    expect([ecap.SSADS, ecap.PASID]).toEqual([0, 0]);
    const got = infoOf(proc, fd, devids[0] as number, VTD_LEN);
    expect(got.rc).toBe(0);
    expect(got.out).toMatchObject({ out_capabilities: 0n, out_max_pasid_log2: 0 });
    expect(structs.iommu_hw_info_vtd.decode(got.data).ecap_reg).toBe(instance.registers().ECAP);
    closeClean(host, proc, fd);
  });

  it('SMMUv3: type ARM_SMMUV3 with iommu_hw_info_arm_smmuv3 = {idr[0..5], iidr, aidr} of the model; DIRTY_TRACKING when IDR0.HTTU is 2; max_pasid_log2 = min(device PASID bits, IDR1.SSIDSIZE)', () => {
    for (const config of [
      { pasidBits: 20, dirtyTracking: true },
      { pasidBits: 8, dirtyTracking: false },
    ]) {
      const { host, proc, fd, devids, instance } = vfioHost({ model: 'smmuv3', ...config }, [
        { pasidBits: 16 },
        { name: 'dma0', streamIds: [0x100], pasidBits: 20 },
        {},
      ]);
      const regs = instance.registers();
      const id = instance.decodedRegisters() as Record<string, Record<string, number>>;
      expect(id.IDR1?.SSIDSIZE).toBe(config.pasidBits);
      const caps = id.IDR0?.HTTU === 2 ? DIRTY : 0n;
      expect(caps).toBe(config.dirtyTracking ? DIRTY : 0n);
      const widths = [Math.min(16, config.pasidBits), Math.min(20, config.pasidBits), 0];
      devids.forEach((devId, i) => {
        const got = infoOf(proc, fd, devId, SMMU_LEN);
        expect(got.rc).toBe(0);
        expect(got.out).toMatchObject({
          data_len: SMMU_LEN,
          out_data_type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
          out_max_pasid_log2: widths[i],
          out_capabilities: caps,
        });
        expect(structs.iommu_hw_info_arm_smmuv3.decode(got.data)).toEqual({
          flags: 0,
          __reserved: 0,
          idr: [regs.IDR0, regs.IDR1, regs.IDR2, regs.IDR3, regs.IDR4, regs.IDR5].map(Number),
          iidr: Number(regs.IIDR),
          aidr: Number(regs.AIDR),
        });
      });
      const devId = devids[0] as number;
      const ask = (inType: number) =>
        hwInfo(proc, fd, {
          dev_id: devId,
          flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE,
          in_data_type: inType,
        }).rc;
      expect(ask(IOMMU_HW_INFO_TYPE_ARM_SMMUV3)).toBe(0);
      expect(ask(IOMMU_HW_INFO_TYPE_INTEL_VTD)).toBe(-EOPNOTSUPP);
      closeClean(host, proc, fd);
    }
  });

  it('AMD (no hw_info op in 6.17): type NONE, data_len 0, nothing copied (a given buffer is cleared), any input type accepted; DIRTY_TRACKING from EFR.HDSUP; max_pasid_log2 = ilog2(min(2^(PASMAX+1) - 1, 2^device bits)) when EFR.GT', () => {
    for (const config of [
      { pasidBits: 0, dirtyTracking: true },
      { pasidBits: 16, dirtyTracking: false },
    ]) {
      const { host, proc, fd, devids, instance } = vfioHost({ model: 'amd', ...config }, [
        { pasidBits: 20 },
        { pasidBits: 4 },
        {},
      ]);
      const efr = instance.decodedRegisters().EFR as Record<string, number | boolean>;
      const gt = efr.GT === true;
      expect(gt).toBe(config.pasidBits > 0);
      const caps = efr.HDSUP === true ? DIRTY : 0n;
      expect(caps).toBe(config.dirtyTracking ? DIRTY : 0n);
      const iommuPasids = gt ? 2 ** ((efr.PASMAX as number) + 1) - 1 : 0;
      const widths = [20, 4, 0].map((bits) =>
        gt && bits > 0 ? Math.floor(Math.log2(Math.min(iommuPasids, 2 ** bits))) : 0,
      );
      if (gt) expect(widths).toEqual([15, 4, 0]);
      devids.forEach((devId, i) => {
        const empty = hwInfo(proc, fd, { dev_id: devId, data_len: 0, data_uptr: 0n });
        expect(empty.rc).toBe(0);
        expect(empty.out).toMatchObject({
          data_len: 0,
          out_data_type: IOMMU_HW_INFO_TYPE_NONE,
          out_max_pasid_log2: widths[i],
          out_capabilities: caps,
        });
        // copy_len is 0, and the kernel clears the rest of the user's buffer.
        const got = infoOf(proc, fd, devId, 16);
        expect(got.rc).toBe(0);
        expect(got.out.data_len).toBe(0);
        expect(got.data).toEqual(new Uint8Array(16));
        expect(bytesAt(proc, got.buf + 16n, 8)).toEqual(new Uint8Array(8).fill(FILL));
      });
      // Without a hw_info op the input type is not looked at.
      const devId = devids[0] as number;
      for (const inType of [IOMMU_HW_INFO_TYPE_INTEL_VTD, IOMMU_HW_INFO_TYPE_SELFTEST]) {
        const got = hwInfo(proc, fd, {
          dev_id: devId,
          flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE,
          in_data_type: inType,
        });
        expect(got.rc).toBe(0);
        expect(got.out.out_data_type).toBe(IOMMU_HW_INFO_TYPE_NONE);
      }
      closeClean(host, proc, fd);
    }
  });
});
