/**
 * Every step a scenario file may use, with its fields: the one table the
 * validator checks files against, `iommufd-sim steps` prints and the README
 * reference is tested against.
 */

/** How a field's YAML value is read. */
export type FieldType =
  /** A number: integer, size (`4 GiB`), `$variable`, uAPI constant, + - * ( ). */
  | 'expr'
  /** A list of numbers. */
  | 'exprs'
  /** A string. */
  | 'text'
  /** true / false. */
  | 'bool'
  /** Bytes as hex (`"ca fe 00 01"`). */
  | 'bytes'
  /** A name the step gives a value to. */
  | 'var'
  /** A configured device's name, or the `as` name a `bind` gave it. */
  | 'device'
  /** An ioctl request macro name. */
  | 'request'
  /** An errno name (`EEXIST`). */
  | 'errno'
  /** A list of errno names. */
  | 'errnos'
  /** A regular expression. */
  | 'regex'
  /** A constant of the field's `enum`, by full or short name. */
  | 'symbol'
  /** A list of constants of the field's `enum` (or a number). */
  | 'flags'
  /** A struct passed by pointer: `{struct: NAME, field: value, ...}` or `{struct: NAME, entries: [...]}`. */
  | 'struct'
  /** `{variable: output_field, ...}`. */
  | 'save'
  /** A list of steps. */
  | 'steps'
  /** One of the field's `choices`. */
  | 'choice'
  /** No value (`- exit:`). */
  | 'none';

/** One field of a step (or of the host, a process). */
export interface FieldSpec {
  readonly type: FieldType;
  readonly doc: string;
  readonly required?: boolean;
  /** For 'symbol' and 'flags': the uapi-types enum. */
  readonly enum?: string;
  /** For 'choice'. */
  readonly choices?: readonly string[];
}

/** What `expect:` means for a step. */
export type ExpectKind =
  /** The return value of the step's main call: 0, a number, `ok`, `error` or an errno name. */
  | 'call'
  /** A DMA's outcome: done, page-request or fault. */
  | 'dma'
  /** The step makes no call to check. */
  | 'none';

/** One kind of step. */
export interface StepSpec {
  /** The key that names the step (`map`). */
  readonly kind: string;
  /** What it does. */
  readonly doc: string;
  /** The calls it makes. */
  readonly calls: string;
  /** The value of the kind key. */
  readonly main: FieldSpec;
  /** Its other fields (besides the common ones). */
  readonly fields: Readonly<Record<string, FieldSpec>>;
  readonly expect: ExpectKind;
  /** The struct whose fields `save:` may name (the main call's argument after the call). */
  readonly output?: string;
  /** Variables set besides `var` fields: suffixes added to the `as`/main name (`.fd`). */
  readonly defineSuffixes?: readonly string[];
}

/** Fields every step may have. */
export const COMMON_FIELDS: Readonly<Record<string, FieldSpec>> = {
  title: { type: 'text', doc: 'What the step is for, shown in the report.' },
  process: {
    type: 'text',
    doc: 'The process that makes the calls (a name from `processes`; default the first).',
  },
};

/** Fields of steps that can be checked. */
export const EXPECT_FIELDS: Readonly<Record<string, FieldSpec>> = {
  expect: {
    type: 'text',
    doc: 'What the main call must return: `0`, another number, `ok` (>= 0, the default), `error` (any failure) or an errno name (`EEXIST`); for `dma`: `done` (default), `page-request` or `fault`.',
  },
  reason: {
    type: 'regex',
    doc: "A regular expression the model's reason for the failure must match (with an errno `expect`).",
  },
};

/** The `save:` field of steps with an output struct. */
export const SAVE_FIELD: FieldSpec = {
  type: 'save',
  doc: 'Variables to set from fields of the output struct: `{ioas: out_ioas_id}`.',
};

const deviceMain: FieldSpec = {
  type: 'device',
  required: true,
  doc: 'The device: its name in `host.devices` or the `as` name its `bind` gave.',
};
const fdField = (doc: string): FieldSpec => ({ type: 'expr', doc });
const iommufdField: FieldSpec = fdField(
  'The /dev/iommu fd (default: the first one the process opened).',
);

/** Every step kind. */
export const STEPS: readonly StepSpec[] = [
  {
    kind: 'open',
    doc: 'Open /dev/iommu or a device node (a device name opens its /dev/vfio/devices/vfioN).',
    calls: 'open',
    main: { type: 'text', required: true, doc: 'A path, or a device name.' },
    fields: { as: { type: 'var', doc: 'Variable for the fd.' } },
    expect: 'call',
  },
  {
    kind: 'close',
    doc: 'Close an fd.',
    calls: 'close',
    main: { type: 'expr', required: true, doc: 'The fd.' },
    fields: {},
    expect: 'call',
  },
  {
    kind: 'mmap',
    doc: 'Map anonymous memory (or a memfd) into the process; the name holds its address. Large mappings are 2 MiB aligned and backed contiguously, as with transparent huge pages.',
    calls: 'mmap (+ a memory write with `data`)',
    main: {
      type: 'var',
      required: true,
      doc: 'Name of the buffer (a variable holding its address).',
    },
    fields: {
      length: { type: 'expr', required: true, doc: 'Bytes.' },
      memfd: fdField('Map this memfd instead of anonymous memory.'),
      offset: { type: 'expr', doc: 'Offset in the memfd.' },
      readonly: { type: 'bool', doc: 'PROT_READ only.' },
      data: { type: 'bytes', doc: 'Bytes to store at the start.' },
    },
    expect: 'call',
  },
  {
    kind: 'munmap',
    doc: 'Unmap process memory.',
    calls: 'munmap',
    main: { type: 'expr', required: true, doc: 'The address (a buffer name).' },
    fields: { length: { type: 'expr', doc: "Bytes (default: the buffer's length)." } },
    expect: 'call',
  },
  {
    kind: 'memfd',
    doc: 'Create a memfd (for IOMMU_IOAS_MAP_FILE); the name holds its fd.',
    calls: 'memfd_create',
    main: { type: 'var', required: true, doc: 'Variable for the fd.' },
    fields: { size: { type: 'expr', required: true, doc: 'Its size in bytes.' } },
    expect: 'call',
  },
  {
    kind: 'write-memory',
    doc: 'Store bytes, or 64-bit little-endian words (page-table entries, descriptors), in process memory.',
    calls: 'a memory store',
    main: { type: 'expr', required: true, doc: 'The address.' },
    fields: {
      data: { type: 'bytes', doc: 'The bytes.' },
      u64: { type: 'exprs', doc: 'Or 64-bit words, stored little-endian one after the other.' },
    },
    expect: 'call',
  },
  {
    kind: 'expect-memory',
    doc: 'Check the bytes at an address of process memory (what a device wrote).',
    calls: 'a memory load',
    main: { type: 'expr', required: true, doc: 'The address.' },
    fields: { equals: { type: 'bytes', required: true, doc: 'The bytes expected there.' } },
    expect: 'none',
  },
  {
    kind: 'ioctl',
    doc: 'Any ioctl, its struct fields by their C names (other keys of the step). The size field (`size` / `argsz`) defaults to sizeof; flag and enum fields take constant names, full or short (`flags: [READABLE, WRITEABLE]`); a pointer field may be `{struct: NAME, ...}`, placed in fresh process memory; union members of iommu_test_cmd are nested maps.',
    calls: 'ioctl',
    main: { type: 'request', required: true, doc: 'The request macro (`IOMMU_IOAS_MAP`).' },
    fields: {
      on: fdField('The fd (default: the first /dev/iommu the process opened).'),
      arg: {
        type: 'expr',
        doc: 'The integer argument of VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU (instead of a struct).',
      },
    },
    expect: 'call',
    output: '(the request’s struct)',
  },
  {
    kind: 'bind',
    doc: "Open the device's VFIO cdev (unless open) and bind it to an iommufd; `as` names the device: `$as` is its dev_id, `$as.fd` its fd.",
    calls: 'open + VFIO_DEVICE_BIND_IOMMUFD',
    main: deviceMain,
    fields: {
      iommufd: iommufdField,
      as: { type: 'var', doc: 'Name for the device and its dev_id.' },
    },
    expect: 'call',
    output: 'vfio_device_bind_iommufd',
    defineSuffixes: ['.fd'],
  },
  {
    kind: 'ioas',
    doc: 'Allocate an IOAS; the name holds its id.',
    calls: 'IOMMU_IOAS_ALLOC',
    main: { type: 'var', required: true, doc: 'Variable for the IOAS id.' },
    fields: { iommufd: iommufdField },
    expect: 'call',
    output: 'iommu_ioas_alloc',
  },
  {
    kind: 'map',
    doc: 'Map process memory into an IOAS (READABLE | WRITEABLE unless `prot` says otherwise); at `iova` (FIXED_IOVA) or where the kernel chooses.',
    calls: 'IOMMU_IOAS_MAP (+ mmap without `buffer`)',
    main: { type: 'expr', required: true, doc: 'The IOAS id.' },
    fields: {
      buffer: {
        type: 'expr',
        doc: 'The user address (a buffer name, `$buf + 4 KiB`). Absent: fresh memory of `length`.',
      },
      length: { type: 'expr', doc: "Bytes (default: the buffer's length)." },
      iova: { type: 'expr', doc: 'A fixed IOVA (IOMMU_IOAS_MAP_FIXED_IOVA).' },
      prot: {
        type: 'flags',
        enum: 'iommufd_ioas_map_flags',
        doc: 'READABLE / WRITEABLE (default both).',
      },
      iommufd: iommufdField,
      as: { type: 'var', doc: 'Variable for the IOVA (useful when the kernel chose it).' },
    },
    expect: 'call',
    output: 'iommu_ioas_map',
  },
  {
    kind: 'map-guest-ram',
    doc: "A VMM's guest RAM: fresh memory of `size`, mapped readable and writeable at IOVA = guest physical address `gpa`.",
    calls: 'mmap + IOMMU_IOAS_MAP',
    main: { type: 'expr', required: true, doc: 'The IOAS id.' },
    fields: {
      size: { type: 'expr', required: true, doc: 'Bytes of guest RAM.' },
      gpa: { type: 'expr', doc: 'Its guest physical (and IO virtual) address; default 0.' },
      iommufd: iommufdField,
      as: { type: 'var', doc: 'Name of the buffer (default `ram`).' },
    },
    expect: 'call',
    output: 'iommu_ioas_map',
  },
  {
    kind: 'unmap',
    doc: 'Unmap whole mappings inside a range of an IOAS.',
    calls: 'IOMMU_IOAS_UNMAP',
    main: { type: 'expr', required: true, doc: 'The IOAS id.' },
    fields: {
      iova: { type: 'expr', doc: 'Start of the range.' },
      length: { type: 'expr', doc: 'Its length.' },
      all: { type: 'bool', doc: 'Everything (iova 0, length U64_MAX).' },
      iommufd: iommufdField,
    },
    expect: 'call',
    output: 'iommu_ioas_unmap',
  },
  {
    kind: 'hwpt',
    doc: 'Allocate a HWPT for a device: paging on an IOAS, or nested on a NEST_PARENT HWPT or a vIOMMU (with `data`).',
    calls: 'IOMMU_HWPT_ALLOC',
    main: { type: 'var', required: true, doc: 'Variable for the HWPT id.' },
    fields: {
      device: { ...deviceMain, doc: 'The device it is for.' },
      pt: { type: 'expr', required: true, doc: 'IOAS, parent HWPT or vIOMMU id.' },
      flags: {
        type: 'flags',
        enum: 'iommufd_hwpt_alloc_flags',
        doc: 'NEST_PARENT, DIRTY_TRACKING, PASID (FAULT_ID_VALID comes with `fault`).',
      },
      fault: { type: 'expr', doc: 'A FAULT object id: page faults go there.' },
      data: {
        type: 'struct',
        doc: 'Vendor data: `{struct: iommu_hwpt_arm_smmuv3, ste: [...]}`, `iommu_hwpt_vtd_s1` or `iommu_hwpt_selftest`; sets data_type and data_len.',
      },
      iommufd: iommufdField,
    },
    expect: 'call',
    output: 'iommu_hwpt_alloc',
  },
  {
    kind: 'attach',
    doc: 'Attach a device (or one of its PASIDs) to an IOAS (an automatic HWPT) or a HWPT.',
    calls: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
    main: deviceMain,
    fields: {
      to: { type: 'expr', required: true, doc: 'IOAS or HWPT id.' },
      pasid: { type: 'expr', doc: 'Attach this PASID (VFIO_DEVICE_ATTACH_PASID).' },
      as: {
        type: 'var',
        doc: 'Variable for the HWPT it ended up on (the automatic one for an IOAS).',
      },
    },
    expect: 'call',
    output: 'vfio_device_attach_iommufd_pt',
  },
  {
    kind: 'detach',
    doc: 'Detach a device (or a PASID).',
    calls: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
    main: deviceMain,
    fields: { pasid: { type: 'expr', doc: 'Detach this PASID.' } },
    expect: 'call',
  },
  {
    kind: 'destroy',
    doc: 'Destroy an object by id.',
    calls: 'IOMMU_DESTROY',
    main: { type: 'expr', required: true, doc: 'The object id.' },
    fields: { iommufd: iommufdField },
    expect: 'call',
  },
  {
    kind: 'fault-queue',
    doc: 'Allocate a FAULT object; the name holds its id and `.fd` its fd.',
    calls: 'IOMMU_FAULT_QUEUE_ALLOC',
    main: { type: 'var', required: true, doc: 'Variable for the fault id.' },
    fields: { iommufd: iommufdField },
    expect: 'call',
    output: 'iommu_fault_alloc',
    defineSuffixes: ['.fd'],
  },
  {
    kind: 'hw-info',
    doc: "Ask for the device's IOMMU: type, capabilities, PASID width and the vendor registers (decoded in the report).",
    calls: 'IOMMU_GET_HW_INFO',
    main: deviceMain,
    fields: { iommufd: iommufdField },
    expect: 'call',
    output: 'iommu_hw_info',
  },
  {
    kind: 'dirty-tracking',
    doc: 'Turn dirty tracking of a HWPT on or off.',
    calls: 'IOMMU_HWPT_SET_DIRTY_TRACKING',
    main: { type: 'expr', required: true, doc: 'The HWPT id.' },
    fields: {
      enable: { type: 'bool', doc: 'On (default) or off.' },
      iommufd: iommufdField,
    },
    expect: 'call',
  },
  {
    kind: 'dirty-bitmap',
    doc: 'Read (and clear, unless `no-clear`) the dirty bits of a range into a bitmap in process memory.',
    calls: 'mmap + IOMMU_HWPT_GET_DIRTY_BITMAP + a memory load',
    main: { type: 'expr', required: true, doc: 'The HWPT id.' },
    fields: {
      iova: { type: 'expr', required: true, doc: 'Start of the range.' },
      length: { type: 'expr', required: true, doc: 'Its length.' },
      'page-size': { type: 'expr', doc: 'Bytes per bit (default 4096).' },
      'no-clear': { type: 'bool', doc: 'IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR.' },
      'expect-count': { type: 'expr', doc: 'How many pages must be dirty.' },
      'expect-dirty': {
        type: 'exprs',
        doc: 'IOVAs whose pages must be dirty (others may be too, with large IOPTEs).',
      },
      iommufd: iommufdField,
    },
    expect: 'call',
    output: 'iommu_hwpt_get_dirty_bitmap',
  },
  {
    kind: 'dma',
    doc: "A DMA by the device through its IOMMU: a write of `write` (or `length` bytes of `fill`), or a read of `read` bytes. A recoverable fault leaves the transfer waiting ('page-request') until a `respond`.",
    calls: 'device DMA (no system call)',
    main: deviceMain,
    fields: {
      iova: { type: 'expr', required: true, doc: 'The IO virtual address.' },
      write: { type: 'bytes', doc: 'Bytes to write.' },
      fill: { type: 'expr', doc: 'Write `length` bytes of this value.' },
      length: { type: 'expr', doc: 'Bytes for `fill`.' },
      read: { type: 'expr', doc: 'Bytes to read.' },
      equals: { type: 'bytes', doc: 'The bytes a read must return.' },
      pasid: { type: 'expr', doc: 'A PASID-tagged request.' },
    },
    expect: 'dma',
  },
  {
    kind: 'read-faults',
    doc: 'Read page-fault records (struct iommu_hwpt_pgfault) from a fault fd.',
    calls: 'read',
    main: { type: 'expr', required: true, doc: 'The fault fd (`$faults.fd`).' },
    fields: {
      max: { type: 'expr', doc: 'Records to ask for (default 16).' },
      'expect-count': { type: 'expr', doc: 'How many records must come back.' },
      record: { type: 'expr', doc: 'Which record `save` reads (default 0, the first).' },
    },
    expect: 'call',
    output: 'iommu_hwpt_pgfault',
  },
  {
    kind: 'respond',
    doc: 'Answer a fault group on a fault fd (struct iommu_hwpt_page_response).',
    calls: 'write',
    main: { type: 'expr', required: true, doc: 'The fault fd.' },
    fields: {
      cookie: {
        type: 'expr',
        required: true,
        doc: 'The cookie of the group (from `read-faults`).',
      },
      code: {
        type: 'symbol',
        enum: 'iommufd_page_response_code',
        doc: 'SUCCESS (default) or INVALID.',
      },
      'expect-dma': {
        type: 'choice',
        choices: ['done', 'fault', 'aborted'],
        doc: 'How the transfers this answer ends must end.',
      },
    },
    expect: 'call',
  },
  {
    kind: 'poll',
    doc: 'poll(2) one fd.',
    calls: 'poll',
    main: { type: 'expr', required: true, doc: 'The fd.' },
    fields: {
      'expect-events': {
        type: 'flags',
        enum: 'poll_events',
        doc: 'The revents that must be reported (POLLIN, POLLOUT, POLLRDNORM, ...).',
      },
    },
    expect: 'none',
  },
  {
    kind: 'viommu',
    doc: 'Allocate a vIOMMU on a NEST_PARENT HWPT.',
    calls: 'IOMMU_VIOMMU_ALLOC',
    main: { type: 'var', required: true, doc: 'Variable for the vIOMMU id.' },
    fields: {
      device: { ...deviceMain, doc: 'A device behind the physical IOMMU.' },
      hwpt: { type: 'expr', required: true, doc: 'The NEST_PARENT HWPT.' },
      type: { type: 'symbol', enum: 'iommu_viommu_type', doc: 'Default ARM_SMMUV3.' },
      iommufd: iommufdField,
    },
    expect: 'call',
    output: 'iommu_viommu_alloc',
  },
  {
    kind: 'vdevice',
    doc: "Register a device with a vIOMMU under the guest's id for it.",
    calls: 'IOMMU_VDEVICE_ALLOC',
    main: { type: 'var', required: true, doc: 'Variable for the vDEVICE id.' },
    fields: {
      viommu: { type: 'expr', required: true, doc: 'The vIOMMU id.' },
      device: { ...deviceMain, doc: 'The device.' },
      'virt-id': {
        type: 'expr',
        required: true,
        doc: "The guest's id (SMMUv3 vSID, VT-d vRID).",
      },
      iommufd: iommufdField,
    },
    expect: 'call',
    output: 'iommu_vdevice_alloc',
  },
  {
    kind: 'veventq',
    doc: 'Allocate a vEVENTQ on a vIOMMU; the name holds its id and `.fd` its fd.',
    calls: 'IOMMU_VEVENTQ_ALLOC',
    main: { type: 'var', required: true, doc: 'Variable for the vEVENTQ id.' },
    fields: {
      viommu: { type: 'expr', required: true, doc: 'The vIOMMU id.' },
      type: { type: 'symbol', enum: 'iommu_veventq_type', doc: 'Default ARM_SMMUV3.' },
      depth: { type: 'expr', doc: 'Events it holds before it drops (default 16).' },
      iommufd: iommufdField,
    },
    expect: 'call',
    output: 'iommu_veventq_alloc',
    defineSuffixes: ['.fd'],
  },
  {
    kind: 'read-events',
    doc: 'Read vEVENTs from a vEVENTQ fd: each a struct iommufd_vevent_header {flags, sequence} and the event (only the header when it says LOST_EVENTS).',
    calls: 'read',
    main: { type: 'expr', required: true, doc: 'The vEVENTQ fd (`$events.fd`).' },
    fields: {
      type: {
        type: 'symbol',
        enum: 'iommu_veventq_type',
        doc: 'The queue type, for the event layout (default ARM_SMMUV3).',
      },
      max: { type: 'expr', doc: 'Bytes to ask for (default 4096).' },
      'expect-count': {
        type: 'expr',
        doc: 'How many events (LOST_EVENTS markers included) must come back.',
      },
      record: { type: 'expr', doc: 'Which header `save` reads (default 0).' },
    },
    expect: 'call',
    output: 'iommufd_vevent_header',
  },
  {
    kind: 'invalidate',
    doc: 'Pass cache invalidation requests to a nested HWPT or a vIOMMU: data_type, entry_len and entry_num come from `entries`.',
    calls: 'IOMMU_HWPT_INVALIDATE',
    main: { type: 'expr', required: true, doc: 'The nested HWPT or vIOMMU id.' },
    fields: {
      entries: {
        type: 'struct',
        required: true,
        doc: 'The requests: `{struct: iommu_viommu_arm_smmuv3_invalidate, entries: [{cmd: [w0, w1]}, ...]}`, `iommu_hwpt_vtd_s1_invalidate`, or the selftest structs.',
      },
      iommufd: iommufdField,
    },
    expect: 'call',
    output: 'iommu_hwpt_invalidate',
  },
  {
    kind: 'expect-errno',
    doc: "Check the process's last failure: its errno, and optionally the call and the reason.",
    calls: 'none',
    main: { type: 'errno', required: true, doc: 'The errno name.' },
    fields: {
      call: { type: 'text', doc: "The failed call's name (`IOMMU_IOAS_MAP`)." },
      reason: { type: 'regex', doc: 'A regular expression the reason must match.' },
    },
    expect: 'none',
  },
  {
    kind: 'memory-status',
    doc: "Report (and check) the process's pinned and locked memory and the host's pinned pages.",
    calls: 'none',
    main: { type: 'none', doc: 'Nothing.' },
    fields: {
      pinned: { type: 'expr', doc: 'Bytes the process must have pinned (VmPin).' },
      locked: { type: 'expr', doc: 'Bytes it must have locked (VmLck).' },
      'user-locked': { type: 'expr', doc: "Bytes its user's locked_vm must hold." },
    },
    expect: 'none',
  },
  {
    kind: 'snapshot',
    doc: 'Record the IOVA map of every IOAS (areas, reserved and usable ranges, HWPTs and their apertures), the memory and the queue statistics, for the report and an SVG.',
    calls: 'none',
    main: { type: 'text', required: true, doc: 'A label.' },
    fields: { iommufd: iommufdField },
    expect: 'none',
  },
  {
    kind: 'walk',
    doc: "Walk the page table of the domain the device is attached to at an IOVA, as its IOMMU does (and draw it with --svg); a nested domain's parent is walked.",
    calls: 'none',
    main: deviceMain,
    fields: {
      iova: { type: 'expr', required: true, doc: 'The IOVA.' },
      pasid: { type: 'expr', doc: "A PASID's domain instead of the RID's." },
    },
    expect: 'none',
  },
  {
    kind: 'group',
    doc: 'Steps that belong together. With `skip-on`, a step failing with one of those errnos skips the rest of the group with a note instead of failing the run (for features a kernel may lack).',
    calls: 'its steps',
    main: { type: 'text', required: true, doc: 'A title.' },
    fields: {
      steps: { type: 'steps', required: true, doc: 'The steps.' },
      'skip-on': { type: 'errnos', doc: 'Errno names that skip the rest: `[EOPNOTSUPP]`.' },
    },
    expect: 'none',
  },
  {
    kind: 'exit',
    doc: 'The process exits: every fd it holds is closed.',
    calls: 'exit',
    main: { type: 'none', doc: 'Nothing.' },
    fields: {},
    expect: 'none',
  },
];

/** Step specs by kind. */
export const STEP_BY_KIND: ReadonlyMap<string, StepSpec> = new Map(STEPS.map((s) => [s.kind, s]));

/** `host:` */
export const HOST_FIELDS: Readonly<Record<string, FieldSpec>> = {
  iommus: { type: 'steps', doc: 'The IOMMUs (see `iommus` entries).' },
  devices: { type: 'steps', doc: 'The devices (see `devices` entries).' },
  selftest: {
    type: 'bool',
    doc: 'CONFIG_IOMMUFD_TEST: IOMMU_TEST_CMD and its mock devices.',
  },
};

/** An entry of `host.iommus`. */
export const IOMMU_FIELDS: Readonly<Record<string, FieldSpec>> = {
  name: { type: 'text', required: true, doc: 'Its name (`vtd0`).' },
  model: {
    type: 'choice',
    required: true,
    choices: ['vtd', 'smmuv3', 'amd', 'mock'],
    doc: 'The hardware.',
  },
  'input-bits': { type: 'expr', doc: 'IOVA width of its domains.' },
  'output-bits': { type: 'expr', doc: 'Physical address width.' },
  'page-sizes': { type: 'exprs', doc: 'Leaf sizes its page tables may use.' },
  'pasid-bits': { type: 'expr', doc: 'PASID width it supports.' },
  nesting: { type: 'bool', doc: 'Nested translation.' },
  'dirty-tracking': { type: 'bool', doc: 'Hardware dirty bits.' },
  ats: { type: 'bool', doc: 'Device TLBs.' },
  pri: { type: 'bool', doc: 'Page requests.' },
};

/** An entry of `host.devices`. */
export const DEVICE_FIELDS: Readonly<Record<string, FieldSpec>> = {
  name: {
    type: 'text',
    required: true,
    doc: 'A PCI BDF (`0000:01:00.0`) or a platform device name.',
  },
  iommu: { type: 'text', required: true, doc: 'The IOMMU it sits behind.' },
  rid: { type: 'expr', doc: 'PCI requester id (default: from the BDF).' },
  'stream-ids': { type: 'exprs', doc: 'SMMUv3 stream ids (required for a platform device there).' },
  'pasid-bits': { type: 'expr', doc: 'PASID width (0: none).' },
  ats: { type: 'bool', doc: 'ATS (PCI).' },
  pri: { type: 'bool', doc: 'PRI: recoverable faults (PCI).' },
  stall: { type: 'bool', doc: 'Stalls on faults (SMMUv3 platform devices).' },
};

/** An entry of `processes`. */
export const PROCESS_FIELDS: Readonly<Record<string, FieldSpec>> = {
  name: { type: 'text', required: true, doc: 'Its name, for `process:` in steps.' },
  memlock: { type: 'expr', doc: 'RLIMIT_MEMLOCK in bytes (default 8 MiB).' },
  privileged: {
    type: 'bool',
    doc: 'Root with CAP_IPC_LOCK: pins are not charged (default true).',
  },
  'ipc-lock': { type: 'bool', doc: 'CAP_IPC_LOCK on its own (default: as privileged).' },
  uid: { type: 'expr', doc: 'User id (default 0 when privileged, else 1000).' },
};

/** The top level of a scenario file. */
export const TOP_FIELDS: Readonly<Record<string, FieldSpec>> = {
  name: { type: 'text', doc: 'The scenario name (default: the file name).' },
  description: { type: 'text', doc: 'What it shows.' },
  host: { type: 'steps', doc: 'The machine (default: the default scenario’s host).' },
  processes: { type: 'steps', doc: 'The processes (default: one privileged process `main`).' },
  steps: { type: 'steps', required: true, doc: 'What happens, in order.' },
};
