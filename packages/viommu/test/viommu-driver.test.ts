/**
 * The drivers on real hardware models, without iommufd-core: which IOMMU
 * takes which vIOMMU type (get_viommu_size), the SMMUv3 guest invalidation
 * loop (conversion, batches of 63 issued to the SMMU, entry_num on a
 * refusal, as arm_vsmmu_cache_invalidate), event forwarding for a vmaster
 * (every stream of the master, and with the multi-SID extension each
 * stream's own vSID), the Tegra241 VINTF, SID slots and LVCMDQs, and the
 * selftest mock's data and invalidation. User memory is a small fake of the
 * core's copy callbacks.
 */
import {
  createIommu,
  Device,
  encodeSmmuCommand,
  encodeSmmuEvent,
  FrameAllocator,
  type HwFault,
  type IommuConfig,
  type IommuDomain,
  type IommuInstance,
  type MockIommu,
  PhysicalMemory,
  type Smmuv3Iommu,
  smmuWordsToBytes,
} from '@iommufd-sim/hw-models';
import {
  EEXIST,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  asSelftestViommu,
  createViommuDriver,
  type Refusal,
  respondViommuData,
  Tegra241Cmdqv,
  type UserArray,
  type UserData,
  type VdeviceEntry,
  type ViommuDriver,
  type ViommuHostSupport,
  viommuTypeProblem,
} from '../src/index.js';

// ---- a machine and fake user memory ------------------------------------------------------------

function machine(configs: IommuConfig[]) {
  const memory = new PhysicalMemory();
  const env = { memory, allocator: new FrameAllocator(memory) };
  const iommus = new Map<string, IommuInstance>(configs.map((c) => [c.name, createIommu(c, env)]));
  return { memory, iommus };
}

function smmuMachine(nesting = true) {
  const { iommus } = machine([{ name: 'smmu0', model: 'smmuv3', nesting }]);
  const smmu = iommus.get('smmu0') as Smmuv3Iommu;
  const plat = new Device({ name: 'plat0', streamIds: [0x20, 0x21, 0x22] });
  const pci = new Device({ name: '0000:05:00.0' });
  smmu.addDevice(plat);
  smmu.addDevice(pci);
  const parent = nesting ? ok(smmu.allocDomain({ type: 'paging', nestParent: true })) : null;
  return { smmu, plat, pci, parent: parent as IommuDomain };
}

function ok<T>(r: { ok: true; value: T } | { ok: false; reason: string }): T {
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

const support = (multiSid = false, cmdqv: Tegra241Cmdqv | null = null): ViommuHostSupport => ({
  settings: { multiSid },
  cmdqv,
});

function driver(type: number, iommu: IommuInstance, parent: IommuDomain, s: ViommuHostSupport) {
  const d = createViommuDriver(type, iommu, parent, s);
  if (!(d instanceof Object) || 'errno' in d)
    throw new Error(`no driver: ${(d as Refusal).reason}`);
  return d as ViommuDriver;
}

/** The core's struct iommu_user_data over `bytes`; what the driver writes back is kept. */
function userData(type: number, bytes: Uint8Array) {
  const written: Uint8Array[] = [];
  const data: UserData = {
    type,
    length: bytes.length,
    copyIn(size, minSize) {
      if (bytes.length < minSize) return { errno: EINVAL, reason: `data_len below ${minSize}` };
      const out = new Uint8Array(size);
      out.set(bytes.subarray(0, size));
      return out;
    },
    copyOut(out) {
      written.push(out.slice());
      return undefined;
    },
  };
  return { data, written };
}

/** The core's struct iommu_user_data_array over 16-byte `entries`. */
function userArray(type: number, entries: Uint8Array[], refuse?: Refusal): UserArray {
  return {
    type,
    entryLength: 16,
    count: entries.length,
    copyEntry: (i, size) => refuse ?? (entries[i] as Uint8Array).slice(0, size),
    copyAll: (size) => refuse ?? entries.map((e) => e.slice(0, size)),
  };
}

const cmd = (name: Parameters<typeof encodeSmmuCommand>[0], fields: Record<string, number> = {}) =>
  smmuWordsToBytes(encodeSmmuCommand(name, fields));

/** A hardware fault carrying the event record `name` on stream `sid`. */
function smmuFault(
  name: Parameters<typeof encodeSmmuEvent>[0],
  fields: Record<string, number>,
): HwFault {
  return {
    model: 'smmuv3',
    name,
    code: 0,
    kind: 'bad-config',
    stage: 1,
    requester: fields.SID ?? 0,
    pasid: -1,
    iova: 0,
    access: 0,
    record: smmuWordsToBytes(encodeSmmuEvent(name, fields)),
    reason: 'test',
  };
}

/** The StreamID field of a guest event's payload. */
const eventSid = (payload: Uint8Array): number =>
  new DataView(payload.buffer, payload.byteOffset).getUint32(4, true);

// ---- which IOMMU takes which type ----------------------------------------------------------------

describe('viommuTypeProblem and createViommuDriver (get_viommu_size)', () => {
  const { iommus } = machine([
    { name: 'mock0', model: 'mock' },
    { name: 'smmu0', model: 'smmuv3' },
    { name: 'smmu-s1', model: 'smmuv3', nesting: false },
    { name: 'vtd0', model: 'vtd' },
    { name: 'amd0', model: 'amd' },
  ]);
  const get = (n: string) => iommus.get(n) as IommuInstance;
  const problem = (type: number, name: string, cmdqv: Tegra241Cmdqv | null = null) =>
    viommuTypeProblem(type, get(name), support(false, cmdqv));

  it('the mock takes SELFTEST only; SMMUv3 with stage 2 takes ARM_SMMUV3', () => {
    expect(problem(IOMMU_VIOMMU_TYPE_SELFTEST, 'mock0')).toBeUndefined();
    expect(problem(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, 'mock0')).toMatchObject({ errno: EOPNOTSUPP });
    expect(problem(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, 'smmu0')).toBeUndefined();
    expect(problem(IOMMU_VIOMMU_TYPE_SELFTEST, 'smmu0')).toMatchObject({ errno: EOPNOTSUPP });
  });

  it('TEGRA241_CMDQV needs an SMMU with a CMDQV', () => {
    const p = problem(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, 'smmu0');
    expect(p).toMatchObject({ errno: EOPNOTSUPP });
    expect(p?.reason).toContain('CMDQV');
    expect(problem(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, 'smmu0', new Tegra241Cmdqv())).toBeUndefined();
  });

  it('an SMMU without stage 2, VT-d and AMD have no vIOMMU at all', () => {
    for (const name of ['smmu-s1', 'vtd0', 'amd0']) {
      for (const type of [IOMMU_VIOMMU_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV]) {
        const p = problem(type, name, new Tegra241Cmdqv());
        expect(p, `${name} ${type}`).toMatchObject({ errno: EOPNOTSUPP });
        expect(p?.reason).toContain(name);
      }
    }
    expect(problem(IOMMU_VIOMMU_TYPE_DEFAULT, 'smmu0')).toMatchObject({ errno: EOPNOTSUPP });
    expect(problem(0xdead, 'smmu0')).toMatchObject({ errno: EOPNOTSUPP });
  });

  it('a parent of another IOMMU is EINVAL; the type is checked first', () => {
    const { smmu } = smmuMachine();
    const other = smmuMachine().parent;
    const r = createViommuDriver(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, smmu, other, support());
    expect(r).toMatchObject({ errno: EINVAL });
    expect(createViommuDriver(0xdead, smmu, other, support())).toMatchObject({ errno: EOPNOTSUPP });
  });

  it('makes the driver of each type', () => {
    const { smmu, parent } = smmuMachine();
    expect(driver(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, smmu, parent, support()).name).toBe('arm-smmuv3');
    expect(
      driver(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, smmu, parent, support(false, new Tegra241Cmdqv()))
        .name,
    ).toBe('tegra241-cmdqv');
    const mock = get('mock0') as MockIommu;
    const mockParent = ok(mock.allocDomain({ type: 'paging', nestParent: true }));
    const selftest = driver(IOMMU_VIOMMU_TYPE_SELFTEST, mock, mockParent, support());
    expect(selftest.name).toBe('selftest');
    expect(asSelftestViommu(selftest)).not.toBeNull();
    expect(
      asSelftestViommu(driver(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, smmu, parent, support())),
    ).toBeNull();
  });
});

// ---- SMMUv3: nested domains and guest invalidation -----------------------------------------------

describe('SMMUv3: nested domains', () => {
  it('takes only IOMMU_HWPT_DATA_ARM_SMMUV3 data and no flags; the vSTE is validated', () => {
    const { smmu, parent } = smmuMachine();
    const d = driver(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, smmu, parent, support());
    const vste = (w0: bigint) => structs.iommu_hwpt_arm_smmuv3.encode({ ste: [w0, 0n] });
    const bypass = userData(IOMMU_HWPT_DATA_ARM_SMMUV3, vste(1n | (4n << 1n))).data;
    const dom = d.allocDomainNested(0, bypass);
    expect(dom).toMatchObject({ type: 'nested', tag: parent.tag });
    expect(d.allocDomainNested(1, bypass)).toMatchObject({ errno: EOPNOTSUPP });
    expect(d.allocDomainNested(0, userData(IOMMU_HWPT_DATA_SELFTEST, vste(0n)).data)).toMatchObject(
      {
        errno: EINVAL,
      },
    );
    expect(
      d.allocDomainNested(0, userData(IOMMU_HWPT_DATA_ARM_SMMUV3, vste(1n | (3n << 1n))).data),
    ).toMatchObject({
      errno: EIO,
    });
    expect(
      d.allocDomainNested(0, userData(IOMMU_HWPT_DATA_ARM_SMMUV3, new Uint8Array(8)).data),
    ).toMatchObject({
      errno: EINVAL,
    });
    expect(d.vmid).toBe(parent.tag);
  });
});

describe('SMMUv3: guest invalidation (arm_vsmmu_cache_invalidate)', () => {
  function setup(multiSid = false) {
    const m = smmuMachine();
    const d = driver(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, m.smmu, m.parent, support(multiSid));
    const entry = d.vdevices.insert(m.plat, 0x100n) as VdeviceEntry<Device>;
    // Each issue: how many guest commands it carried (the host's own CMD_SYNC aside).
    const batches: number[] = [];
    const endsWithSync: boolean[] = [];
    const submit = m.smmu.submitCommands.bind(m.smmu);
    m.smmu.submitCommands = (bytes: Uint8Array) => {
      batches.push(guestCommands(bytes));
      endsWithSync.push(bytes[bytes.length - 16] === 0x46);
      return submit(bytes);
    };
    const inv = (entries: Uint8Array[]) =>
      d.cacheInvalidate(userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, entries));
    // What the SMMU ran since `from`, without the host's CMD_SYNCs.
    const ran = (from: number) =>
      m.smmu
        .recentCommands()
        .slice(from)
        .filter((c) => c.name !== 'CMD_SYNC');
    return { ...m, d, entry, batches, endsWithSync, inv, ran };
  }

  /** The commands of an issued batch that are not CMD_SYNC. */
  function guestCommands(bytes: Uint8Array): number {
    let n = 0;
    for (let at = 0; at < bytes.length; at += 16) if (bytes[at] !== 0x46) n++;
    return n;
  }

  it('the commands reach the SMMU converted: the VMID in TLBIs, the physical SID in CFGI_CD / ATC_INV', () => {
    const { smmu, d, inv, ran } = setup();
    const before = smmu.recentCommands().length;
    const r = inv([
      cmd('TLBI_NH_ASID', { VMID: 0x7fff, ASID: 3 }),
      cmd('TLBI_NSNH_ALL'),
      cmd('CFGI_CD', { SID: 0x100, SSID: 0, Leaf: 1 }),
      cmd('ATC_INV', { SID: 0x100, Size: 52 }),
    ]);
    expect(r).toEqual({ handled: 4 });
    expect(ran(before).map((c) => [c.name, c.fields.VMID ?? c.fields.SID])).toEqual([
      ['TLBI_NH_ASID', d.vmid],
      ['TLBI_NH_ALL', d.vmid],
      ['CFGI_CD', 0x20],
      ['ATC_INV', 0x20],
    ]);
  });

  it('entry_num 0 does nothing; a wrong data type is EINVAL; a copy refusal passes through', () => {
    const { d, inv, batches } = setup();
    expect(inv([])).toEqual({ handled: 0 });
    expect(batches).toEqual([]);
    const wrong = d.cacheInvalidate(
      userArray(IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, [cmd('CFGI_CD_ALL')]),
    );
    expect(wrong).toMatchObject({ handled: 0, refusal: { errno: EINVAL } });
    const fault = { errno: EFAULT, reason: 'bad pointer' };
    expect(
      d.cacheInvalidate(
        userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, [cmd('CFGI_CD_ALL')], fault),
      ),
    ).toEqual({ handled: 0, refusal: fault });
  });

  it("issues in batches of 63 and at the end, each followed by the host driver's CMD_SYNC", () => {
    const { inv, batches, endsWithSync } = setup();
    const list = Array.from({ length: 130 }, () => cmd('TLBI_NH_ALL'));
    expect(inv(list)).toEqual({ handled: 130 });
    expect(batches).toEqual([63, 63, 4]);
    expect(endsWithSync).toEqual([true, true, true]);
  });

  it('a refused command stops the loop: entry_num is its index, and the commands converted since the last batch are never issued', () => {
    const { smmu, inv, batches, ran } = setup();
    const list = Array.from({ length: 70 }, () => cmd('TLBI_NH_ALL'));
    list[66] = cmd('CFGI_STE', { SID: 0x100, Leaf: 1 });
    const before = smmu.recentCommands().length;
    const r = inv(list);
    expect(r.handled).toBe(66);
    expect(r.refusal).toMatchObject({ errno: EIO });
    expect(r.refusal?.reason).toMatch(/entry 66: opcode 0x3/);
    expect(batches).toEqual([63]);
    expect(ran(before)).toHaveLength(63);
  });

  it('an unknown vSID is EIO at its entry', () => {
    const { inv } = setup();
    const r = inv([cmd('TLBI_NH_ALL'), cmd('ATC_INV', { SID: 0x999 })]);
    expect(r).toMatchObject({ handled: 1, refusal: { errno: EIO } });
    expect(r.refusal?.reason).toContain('0x999');
  });

  it('the hardware failing an issue counts up to the entry before the batch end (the kernel cur--)', () => {
    const { smmu, inv } = setup();
    smmu.submitCommands = () => ({ ok: false, errno: EIO, reason: 'CERROR_ILL', consumed: 0 });
    expect(inv(Array.from({ length: 5 }, () => cmd('TLBI_NH_ALL')))).toMatchObject({
      handled: 4,
      refusal: { errno: EIO, reason: 'CERROR_ILL' },
    });
    expect(inv(Array.from({ length: 64 }, () => cmd('TLBI_NH_ALL')))).toMatchObject({
      handled: 62,
    });
  });

  it('without the extension an endpoint vSID never exists: vSID → streams[0] only', () => {
    const { smmu, d, entry, inv, ran } = setup(false);
    // Even if the table had one, the driver would not translate endpoint 1 without the opt-in.
    expect(d.vdevices.setEndpoint(entry, 1, 0x101n)).toBe('ok');
    expect(inv([cmd('CFGI_CD_ALL', { SID: 0x101 })])).toMatchObject({
      handled: 0,
      refusal: { errno: EIO },
    });
    const before = smmu.recentCommands().length;
    expect(inv([cmd('CFGI_CD_ALL', { SID: 0x100 })])).toEqual({ handled: 1 });
    expect(ran(before)[0]?.fields.SID).toBe(0x20);
  });

  it('with the extension vSID_i reaches the SMMU as pSID_i', () => {
    const { smmu, d, entry, inv, ran } = setup(true);
    d.vdevices.setEndpoint(entry, 1, 0x101n);
    d.vdevices.setEndpoint(entry, 2, 0x102n);
    const before = smmu.recentCommands().length;
    expect(
      inv([
        cmd('ATC_INV', { SID: 0x102 }),
        cmd('CFGI_CD', { SID: 0x101 }),
        cmd('CFGI_CD_ALL', { SID: 0x100 }),
      ]),
    ).toEqual({ handled: 3 });
    expect(ran(before).map((c) => [c.name, c.fields.SID])).toEqual([
      ['ATC_INV', 0x22],
      ['CFGI_CD', 0x21],
      ['CFGI_CD_ALL', 0x20],
    ]);
  });
});

// ---- SMMUv3: events for a vmaster ----------------------------------------------------------------

describe('SMMUv3: events (arm_vmaster_report_event)', () => {
  function setup(multiSid = false) {
    const m = smmuMachine();
    const d = driver(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, m.smmu, m.parent, support(multiSid));
    const entry = d.vdevices.insert(m.plat, 0x100n) as VdeviceEntry<Device>;
    return { ...m, d, entry };
  }

  it('an attach needs a vDEVICE here (ENOENT naming the device)', () => {
    const { d, plat, pci } = setup();
    expect(d.vmasterProblem(plat)).toBeUndefined();
    const p = d.vmasterProblem(pci);
    expect(p).toMatchObject({ errno: ENOENT });
    expect(p?.reason).toContain('0000:05:00.0');
  });

  it('nothing is forwarded before the attach or after forgetMaster', () => {
    const { d, plat } = setup();
    const f = smmuFault('F_TRANSLATION', { SID: 0x20 });
    expect(d.guestEvent(f)).toBeNull();
    d.attachNested(plat);
    expect(d.reportedVirtId(plat)).toBe(0x100);
    expect(d.guestEvent(f)).not.toBeNull();
    d.forgetMaster(plat);
    expect(d.reportedVirtId(plat)).toBeUndefined();
    expect(d.guestEvent(f)).toBeNull();
  });

  it('a forwarded event is the record with the StreamID replaced, on the ARM_SMMUV3 vEVENTQ', () => {
    const { d, plat } = setup();
    d.attachNested(plat);
    const f = smmuFault('F_PERMISSION', { SID: 0x20, SSV: 1, SSID: 4, RnW: 1, InputAddr: 0x1000 });
    const e = d.guestEvent(f);
    expect(e?.type).toBe(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3);
    expect(eventSid(e?.payload as Uint8Array)).toBe(0x100);
    expect(e?.payload.subarray(0, 4)).toEqual(f.record.subarray(0, 4));
    expect(e?.payload.subarray(8)).toEqual(f.record.subarray(8));
  });

  it('stalls, stage-2 faults, other event IDs, other models and short records are not forwarded', () => {
    const { d, plat } = setup();
    d.attachNested(plat);
    expect(d.guestEvent(smmuFault('F_TRANSLATION', { SID: 0x20, Stall: 1 }))).toBeNull();
    expect(d.guestEvent(smmuFault('F_TRANSLATION', { SID: 0x20, S2: 1 }))).toBeNull();
    expect(d.guestEvent(smmuFault('F_CD_FETCH', { SID: 0x20 }))).toBeNull();
    expect(d.guestEvent({ ...smmuFault('C_BAD_CD', { SID: 0x20 }), model: 'vtd' })).toBeNull();
    const short = smmuFault('C_BAD_CD', { SID: 0x20 });
    expect(d.guestEvent({ ...short, record: short.record.subarray(0, 16) })).toBeNull();
    expect(d.guestEvent(smmuFault('C_BAD_CD', { SID: 0x55 }))).toBeNull(); // no master of this vIOMMU
  });

  it('without the extension every stream of the master is reported with its one vSID (arm_smmu_find_master matches any of them)', () => {
    const { d, plat } = setup(false);
    d.attachNested(plat);
    for (const sid of [0x20, 0x21, 0x22]) {
      const e = d.guestEvent(smmuFault('F_TRANSLATION', { SID: sid }));
      expect(e, `stream 0x${sid.toString(16)}`).not.toBeNull();
      expect(eventSid(e?.payload as Uint8Array)).toBe(0x100);
    }
  });

  it('with the extension pSID_i is reported as vSID_i; a stream without its own vSID keeps the virt_id', () => {
    const { d, plat, entry } = setup(true);
    d.vdevices.setEndpoint(entry, 1, 0x101n);
    d.attachNested(plat);
    const sidOf = (sid: number) =>
      eventSid(d.guestEvent(smmuFault('C_BAD_STE', { SID: sid }))?.payload as Uint8Array);
    expect([sidOf(0x20), sidOf(0x21), sidOf(0x22)]).toEqual([0x100, 0x101, 0x100]);
    // The vmaster is what the attach saw; a new attach takes a later endpoint.
    d.vdevices.setEndpoint(entry, 2, 0x102n);
    expect(sidOf(0x22)).toBe(0x100);
    d.attachNested(plat);
    expect(sidOf(0x22)).toBe(0x102);
  });

  it('destroy forgets every vmaster', () => {
    const { d, plat } = setup();
    d.attachNested(plat);
    d.destroy();
    expect(d.guestEvent(smmuFault('C_BAD_CD', { SID: 0x20 }))).toBeNull();
  });

  it('a plain SMMUv3 vIOMMU has no data to answer, no mmap region and no HW queues', () => {
    const { d } = setup();
    expect(d.init(null)).toBeUndefined();
    const { data, written } = userData(0, new Uint8Array(16));
    expect(respondViommuData(d, data, 0n)).toBeUndefined();
    expect(written).toEqual([]);
    expect(d.mmapRegion).toBeNull();
    expect(d.hwQueueSupported(IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV)).toBe(false);
    expect(d.hwQueueInit(0, 0, 0, 4096)).toMatchObject({ errno: EOPNOTSUPP });
  });
});

// ---- Tegra241 CMDQV ------------------------------------------------------------------------------

describe('Tegra241 CMDQV', () => {
  function setup(config: ConstructorParameters<typeof Tegra241Cmdqv>[0] = {}) {
    const m = smmuMachine();
    const cmdqv = new Tegra241Cmdqv(config);
    const make = () =>
      driver(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, m.smmu, m.parent, support(false, cmdqv));
    const data = () => userData(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, new Uint8Array(16));
    return { ...m, cmdqv, make, data };
  }

  it('init needs its data; it takes a VINTF and publishes its 64 KiB page', () => {
    const { make, data } = setup();
    const d = make();
    const none = d.init(null);
    expect(none).toMatchObject({ errno: EINVAL });
    expect(none?.reason).toContain('iommu_viommu_tegra241_cmdqv');
    const { data: u, written } = data();
    expect(d.init(u)).toBeUndefined();
    expect(d.mmapRegion?.length).toBe(0x10000);
    expect(respondViommuData(d, u, 0x3000n)).toBeUndefined();
    expect(written.map((b) => structs.iommu_viommu_tegra241_cmdqv.decode(b))).toEqual([
      { out_vintf_mmap_offset: 0x3000n, out_vintf_mmap_length: 0x10000n },
    ]);
  });

  it('data shorter than the struct is refused by the copy (EINVAL) and takes no VINTF', () => {
    const { make } = setup({ vintfs: 2 });
    const d = make();
    expect(
      d.init(userData(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, new Uint8Array(8)).data),
    ).toMatchObject({
      errno: EINVAL,
    });
    expect(
      make().init(userData(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, new Uint8Array(16)).data),
    ).toBeUndefined();
  });

  it('VINTF exhaustion is ENOSPC; destroying a vIOMMU gives its VINTF back', () => {
    const { make, data } = setup({ vintfs: 2 });
    const a = make();
    expect(a.init(data().data)).toBeUndefined();
    const b = make();
    expect(b.init(data().data)).toMatchObject({ errno: ENOSPC });
    b.destroy(); // a failed init holds nothing
    expect(make().init(data().data)).toMatchObject({ errno: ENOSPC });
    a.destroy();
    expect(make().init(data().data)).toBeUndefined();
  });

  it('each vDEVICE takes a SID pair: ENOSPC when all are used, EINVAL for a virt_id over 32 bits, freed on destroy', () => {
    const { make, data, plat, pci, smmu } = setup({ sidsPerVintf: 1 });
    const d = make();
    d.init(data().data);
    const a = d.vdevices.insert(plat, 1n) as VdeviceEntry<Device>;
    expect(d.vdeviceInit(a)).toBeUndefined();
    const b = d.vdevices.insert(pci, 2n) as VdeviceEntry<Device>;
    expect(d.vdeviceInit(b)).toMatchObject({ errno: ENOSPC });
    d.vdevices.remove(b);
    d.vdeviceDestroy(a);
    d.vdevices.remove(a);
    expect(d.vdeviceInit(d.vdevices.insert(pci, 2n) as VdeviceEntry<Device>)).toBeUndefined();
    const third = new Device({ name: '0000:06:00.0' });
    smmu.addDevice(third);
    const wide = d.vdevices.insert(third, 1n << 32n) as VdeviceEntry<Device>;
    expect(d.vdeviceInit(wide)).toMatchObject({ errno: EINVAL });
  });

  it('LVCMDQs: type TEGRA241_CMDQV only; rising indexes below the per-VINTF count; the geometry of IDR1.CMDQS', () => {
    const { make, data } = setup({ lvcmdqsPerVintf: 2 });
    const d = make();
    d.init(data().data);
    expect(d.hwQueueSupported(IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV)).toBe(true);
    expect(d.hwQueueSupported(IOMMU_HW_QUEUE_TYPE_SELFTEST)).toBe(false);
    expect(d.hwQueueInit(1, 0, 0x10000, 4096)).toMatchObject({ errno: EIO });
    expect(d.hwQueueInit(0, 0, 0x10000, 48)).toMatchObject({ errno: EINVAL });
    expect(d.hwQueueInit(0, 0, 0x10800, 4096)).toMatchObject({ errno: EINVAL });
    expect(d.hwQueueInit(0, 0, 0x10000, 4096)).toBe(-1);
    expect(d.hwQueueInit(0, 0, 0x10000, 4096)).toMatchObject({ errno: EEXIST });
    expect(d.hwQueueInit(1, 0, 0x20000, 32)).toBe(0);
    expect(d.hwQueueInit(2, 0, 0x30000, 32)).toMatchObject({ errno: EINVAL });
    d.hwQueueDestroy(1);
    expect(d.hwQueueInit(1, 0, 0x20000, 32)).toBe(0);
  });
});

// ---- the selftest mock -------------------------------------------------------------------------

describe('the selftest mock vIOMMU', () => {
  function setup() {
    const { iommus, memory } = machine([{ name: 'mock0', model: 'mock' }]);
    const mock = iommus.get('mock0') as MockIommu;
    const dev = new Device({ name: 'mock-dev0', rid: 0x10 });
    mock.addDevice(dev);
    const parent = ok(mock.allocDomain({ type: 'paging', nestParent: true }));
    const d = driver(IOMMU_VIOMMU_TYPE_SELFTEST, mock, parent, support());
    return { mock, dev, parent, d, memory };
  }
  const inv = (vdevId: number, flags = 0, cacheId = 0) =>
    structs.iommu_viommu_invalidate_selftest.encode({ vdev_id: vdevId, flags, cache_id: cacheId });

  it('with data, publishes two pages whose first u32 is in_data, and answers out_data = in_data', () => {
    const { d } = setup();
    const { data, written } = userData(
      IOMMU_VIOMMU_TYPE_SELFTEST,
      structs.iommu_viommu_selftest.encode({ in_data: 0xcafe }),
    );
    expect(d.init(data)).toBeUndefined();
    expect(d.mmapRegion?.length).toBe(8192);
    const contents = d.mmapRegion?.contents ?? new Uint8Array(4);
    expect(new DataView(contents.buffer).getUint32(0, true)).toBe(0xcafe);
    expect(respondViommuData(d, data, 0x5000n)).toBeUndefined();
    expect(structs.iommu_viommu_selftest.decode(written[0] as Uint8Array)).toEqual({
      in_data: 0xcafe,
      out_data: 0xcafe,
      out_mmap_offset: 0x5000n,
      out_mmap_length: 8192n,
    });
    expect(setup().d.init(null)).toBeUndefined();
  });

  it('invalidation stops at the first bad entry: flags EOPNOTSUPP, cache_id > 3 EINVAL, unknown vdev_id EINVAL', () => {
    const { d, dev } = setup();
    d.vdevices.insert(dev, 0x99n);
    const run = (...entries: Uint8Array[]) =>
      d.cacheInvalidate({
        type: IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
        entryLength: entries[0]?.length ?? 0,
        count: entries.length,
        copyEntry: (i, size) => (entries[i] as Uint8Array).slice(0, size),
        copyAll: (size) => entries.map((e) => e.slice(0, size)),
      });
    expect(run(inv(0x99), inv(0x99, IOMMU_TEST_INVALIDATE_FLAG_ALL))).toEqual({ handled: 2 });
    expect(run(inv(0x99), inv(0x99, 2))).toMatchObject({
      handled: 1,
      refusal: { errno: EOPNOTSUPP },
    });
    expect(run(inv(0x99, 0, 4))).toMatchObject({ handled: 0, refusal: { errno: EINVAL } });
    const unknown = run(inv(0x99), inv(0x9));
    expect(unknown).toMatchObject({ handled: 1, refusal: { errno: EINVAL } });
    expect(unknown.refusal?.reason).toContain('0x9');
    expect(
      d.cacheInvalidate(userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, [inv(0x99)])),
    ).toMatchObject({ handled: 0, refusal: { errno: EINVAL } });
  });

  it('HW queues: SELFTEST type, the index rules, and the base must be what the parent translates', () => {
    const { d, parent } = setup();
    expect(d.hwQueueSupported(IOMMU_HW_QUEUE_TYPE_SELFTEST)).toBe(true);
    expect(d.hwQueueSupported(IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV)).toBe(false);
    expect(parent.map(0x100000, 0x7000000, 0x2000, 3)).toBe(0x2000);
    expect(d.hwQueueInit(0, 0x100000, 0x7001000, 4096)).toMatchObject({ errno: EFAULT });
    expect(d.hwQueueInit(1, 0x101000, 0x7001000, 4096)).toMatchObject({ errno: EIO });
    expect(d.hwQueueInit(0, 0x100000, 0x7000000, 4096)).toBe(-1);
    expect(d.hwQueueInit(1, 0x101000, 0x7001000, 4096)).toBe(0);
    expect(d.hwQueueInit(2, 0x101000, 0x7001000, 4096)).toMatchObject({ errno: EINVAL });
    expect(d.hwQueueInit(0, 0x100000, 0x7000000, 4096)).toMatchObject({ errno: EEXIST });
  });

  it('TRIGGER_VEVENT reports the attached device with its virt_id, nothing for one not attached', () => {
    const { d, dev } = setup();
    const st = asSelftestViommu(d);
    d.vdevices.insert(dev, 0x1234n);
    expect(st?.selftestEvent(dev)).toBeNull();
    d.attachNested(dev);
    const e = st?.selftestEvent(dev);
    expect(structs.iommu_viommu_event_selftest.decode(e?.payload as Uint8Array)).toEqual({
      virt_id: 0x1234,
    });
  });
});
