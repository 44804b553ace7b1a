/**
 * Every ioctl request of the modelled uAPI: its number, its struct, the
 * smallest size the kernel accepts and which copy rule reads its argument.
 */
import {
  IOMMUFD_CMD_BASE,
  IOMMUFD_CMD_DESTROY,
  IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
  IOMMUFD_CMD_GET_HW_INFO,
  IOMMUFD_CMD_HW_QUEUE_ALLOC,
  IOMMUFD_CMD_HWPT_ALLOC,
  IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
  IOMMUFD_CMD_HWPT_INVALIDATE,
  IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING,
  IOMMUFD_CMD_IOAS_ALLOC,
  IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
  IOMMUFD_CMD_IOAS_CHANGE_PROCESS,
  IOMMUFD_CMD_IOAS_COPY,
  IOMMUFD_CMD_IOAS_IOVA_RANGES,
  IOMMUFD_CMD_IOAS_MAP,
  IOMMUFD_CMD_IOAS_MAP_FILE,
  IOMMUFD_CMD_IOAS_UNMAP,
  IOMMUFD_CMD_OPTION,
  IOMMUFD_CMD_VDEVICE_ALLOC,
  IOMMUFD_CMD_VEVENTQ_ALLOC,
  IOMMUFD_CMD_VFIO_IOAS,
  IOMMUFD_CMD_VIOMMU_ALLOC,
  IOMMUFD_TYPE,
} from './constants/iommufd.js';
import {
  VFIO_BASE,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_FLAG_TOKEN,
  VFIO_DEVICE_DETACH_PASID,
  VFIO_TYPE,
} from './constants/vfio.js';
import { _IO } from './ioc.js';
import { type StructName, structs } from './structs.js';

/**
 * How the kernel copies an ioctl's argument in and out (see copy-rules.ts):
 * `iommufd` for every `/dev/iommu` command (the size-extensible rule),
 * and the VFIO cdev's own code for its three commands.
 */
export type CopyRule = 'iommufd' | 'vfio-bind' | 'vfio-attach' | 'vfio-detach';

/** A field a flag turns on, and the size the argument must then have. */
export interface FlagExtension {
  readonly flag: number;
  readonly flagName: string;
  readonly field: string;
  readonly minSize: number;
}

/** One ioctl request. */
export interface IoctlInfo {
  /** The request macro, for example `IOMMU_IOAS_MAP`. */
  readonly name: string;
  /** The request number passed to ioctl(2). */
  readonly request: number;
  /** The struct its argument points to. */
  readonly struct: StructName;
  /** `sizeof` that struct in 6.17. */
  readonly size: number;
  /** The last field every caller must provide (the kernel's minimum, `offsetofend`). */
  readonly minSizeField: string;
  /** The smallest `size` / `argsz` accepted; below it the kernel answers EINVAL. */
  readonly minSize: number;
  /** Fields a flag adds, with the larger size they need (VFIO only). */
  readonly flagExtensions: readonly FlagExtension[];
  /** Which copy rule reads the argument. */
  readonly copyRule: CopyRule;
  /** True for IOMMU_TEST_CMD, which exists only with CONFIG_IOMMUFD_TEST. */
  readonly selftest: boolean;
  /** What the request does, in one sentence. */
  readonly doc: string;
}

/** `IOMMU_DESTROY` = 0x3b80 */
export const IOMMU_DESTROY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);
/** `IOMMU_IOAS_ALLOC` = 0x3b81 */
export const IOMMU_IOAS_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC);
/** `IOMMU_IOAS_ALLOW_IOVAS` = 0x3b82 */
export const IOMMU_IOAS_ALLOW_IOVAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS);
/** `IOMMU_IOAS_COPY` = 0x3b83 */
export const IOMMU_IOAS_COPY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY);
/** `IOMMU_IOAS_IOVA_RANGES` = 0x3b84 */
export const IOMMU_IOAS_IOVA_RANGES = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES);
/** `IOMMU_IOAS_MAP` = 0x3b85 */
export const IOMMU_IOAS_MAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP);
/** `IOMMU_IOAS_UNMAP` = 0x3b86 */
export const IOMMU_IOAS_UNMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP);
/** `IOMMU_OPTION` = 0x3b87 */
export const IOMMU_OPTION = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION);
/** `IOMMU_VFIO_IOAS` = 0x3b88 */
export const IOMMU_VFIO_IOAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS);
/** `IOMMU_HWPT_ALLOC` = 0x3b89 */
export const IOMMU_HWPT_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC);
/** `IOMMU_GET_HW_INFO` = 0x3b8a */
export const IOMMU_GET_HW_INFO = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO);
/** `IOMMU_HWPT_SET_DIRTY_TRACKING` = 0x3b8b */
export const IOMMU_HWPT_SET_DIRTY_TRACKING = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);
/** `IOMMU_HWPT_GET_DIRTY_BITMAP` = 0x3b8c */
export const IOMMU_HWPT_GET_DIRTY_BITMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);
/** `IOMMU_HWPT_INVALIDATE` = 0x3b8d */
export const IOMMU_HWPT_INVALIDATE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE);
/** `IOMMU_FAULT_QUEUE_ALLOC` = 0x3b8e */
export const IOMMU_FAULT_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC);
/** `IOMMU_IOAS_MAP_FILE` = 0x3b8f */
export const IOMMU_IOAS_MAP_FILE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE);
/** `IOMMU_VIOMMU_ALLOC` = 0x3b90 */
export const IOMMU_VIOMMU_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC);
/** `IOMMU_VDEVICE_ALLOC` = 0x3b91 */
export const IOMMU_VDEVICE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC);
/** `IOMMU_IOAS_CHANGE_PROCESS` = 0x3b92 */
export const IOMMU_IOAS_CHANGE_PROCESS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS);
/** `IOMMU_VEVENTQ_ALLOC` = 0x3b93 */
export const IOMMU_VEVENTQ_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC);
/** `IOMMU_HW_QUEUE_ALLOC` = 0x3b94 */
export const IOMMU_HW_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC);
/** `IOMMU_TEST_CMD` = 0x3ba0: the selftest command, only with CONFIG_IOMMUFD_TEST. */
export const IOMMU_TEST_CMD = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32);
/** `VFIO_DEVICE_BIND_IOMMUFD` = 0x3b76, on a VFIO device cdev. */
export const VFIO_DEVICE_BIND_IOMMUFD = _IO(VFIO_TYPE, VFIO_BASE + 18);
/** `VFIO_DEVICE_ATTACH_IOMMUFD_PT` = 0x3b77, on a VFIO device cdev. */
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 19);
/** `VFIO_DEVICE_DETACH_IOMMUFD_PT` = 0x3b78, on a VFIO device cdev. */
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 20);

interface Definition {
  readonly request: number;
  readonly struct: StructName;
  readonly minSizeField: string;
  readonly doc: string;
  readonly copyRule?: CopyRule;
  readonly flagExtensions?: readonly (readonly [flagName: string, flag: number, field: string])[];
  readonly selftest?: boolean;
}

function endOf(struct: StructName, field: string): number {
  const info = (
    structs[struct].fields as Readonly<Record<string, { offset: number; size: number }>>
  )[field];
  if (info === undefined) throw new Error(`${struct} has no field ${field}`);
  return info.offset + info.size;
}

function define(name: string, d: Definition): IoctlInfo {
  return Object.freeze({
    name,
    request: d.request,
    struct: d.struct,
    size: structs[d.struct].sizeof,
    minSizeField: d.minSizeField,
    minSize: endOf(d.struct, d.minSizeField),
    flagExtensions: Object.freeze(
      (d.flagExtensions ?? []).map(([flagName, flag, field]) =>
        Object.freeze({ flag, flagName, field, minSize: endOf(d.struct, field) }),
      ),
    ),
    copyRule: d.copyRule ?? 'iommufd',
    selftest: d.selftest ?? false,
    doc: d.doc,
  });
}

const definitions = {
  IOMMU_DESTROY: {
    request: IOMMU_DESTROY,
    struct: 'iommu_destroy',
    minSizeField: 'id',
    doc: 'Destroy any object by id.',
  },
  IOMMU_IOAS_ALLOC: {
    request: IOMMU_IOAS_ALLOC,
    struct: 'iommu_ioas_alloc',
    minSizeField: 'out_ioas_id',
    doc: 'Create an I/O address space.',
  },
  IOMMU_IOAS_ALLOW_IOVAS: {
    request: IOMMU_IOAS_ALLOW_IOVAS,
    struct: 'iommu_ioas_allow_iovas',
    minSizeField: 'allowed_iovas',
    doc: 'Restrict automatic IOVA allocation to a list of ranges.',
  },
  IOMMU_IOAS_COPY: {
    request: IOMMU_IOAS_COPY,
    struct: 'iommu_ioas_copy',
    minSizeField: 'src_iova',
    doc: 'Map already pinned pages of one IOAS into another.',
  },
  IOMMU_IOAS_IOVA_RANGES: {
    request: IOMMU_IOAS_IOVA_RANGES,
    struct: 'iommu_ioas_iova_ranges',
    minSizeField: 'out_iova_alignment',
    doc: 'Report the usable IOVA ranges of an IOAS.',
  },
  IOMMU_IOAS_MAP: {
    request: IOMMU_IOAS_MAP,
    struct: 'iommu_ioas_map',
    minSizeField: 'iova',
    doc: 'Map user memory into an IOAS.',
  },
  IOMMU_IOAS_UNMAP: {
    request: IOMMU_IOAS_UNMAP,
    struct: 'iommu_ioas_unmap',
    minSizeField: 'length',
    doc: 'Unmap whole mappings inside an IOVA range.',
  },
  IOMMU_OPTION: {
    request: IOMMU_OPTION,
    struct: 'iommu_option',
    minSizeField: 'val64',
    doc: 'Get or set an option (RLIMIT_MODE, HUGE_PAGES).',
  },
  IOMMU_VFIO_IOAS: {
    request: IOMMU_VFIO_IOAS,
    struct: 'iommu_vfio_ioas',
    minSizeField: '__reserved',
    doc: 'Get, set or clear the IOAS of the VFIO container emulation.',
  },
  IOMMU_HWPT_ALLOC: {
    request: IOMMU_HWPT_ALLOC,
    struct: 'iommu_hwpt_alloc',
    minSizeField: '__reserved',
    doc: 'Create a HW page table for a device.',
  },
  IOMMU_GET_HW_INFO: {
    request: IOMMU_GET_HW_INFO,
    struct: 'iommu_hw_info',
    minSizeField: '__reserved',
    doc: 'Describe the physical IOMMU behind a device.',
  },
  IOMMU_HWPT_SET_DIRTY_TRACKING: {
    request: IOMMU_HWPT_SET_DIRTY_TRACKING,
    struct: 'iommu_hwpt_set_dirty_tracking',
    minSizeField: '__reserved',
    doc: 'Turn dirty tracking of a HWPT on or off.',
  },
  IOMMU_HWPT_GET_DIRTY_BITMAP: {
    request: IOMMU_HWPT_GET_DIRTY_BITMAP,
    struct: 'iommu_hwpt_get_dirty_bitmap',
    minSizeField: 'data',
    doc: 'Read the dirty bits of an IOVA range into a bitmap.',
  },
  IOMMU_HWPT_INVALIDATE: {
    request: IOMMU_HWPT_INVALIDATE,
    struct: 'iommu_hwpt_invalidate',
    minSizeField: '__reserved',
    doc: 'Pass cache invalidation requests to a nested HWPT or vIOMMU.',
  },
  IOMMU_FAULT_QUEUE_ALLOC: {
    request: IOMMU_FAULT_QUEUE_ALLOC,
    struct: 'iommu_fault_alloc',
    minSizeField: 'out_fault_fd',
    doc: 'Create a fault object and its fd.',
  },
  IOMMU_IOAS_MAP_FILE: {
    request: IOMMU_IOAS_MAP_FILE,
    struct: 'iommu_ioas_map_file',
    minSizeField: 'iova',
    doc: 'Map a range of a memfd into an IOAS.',
  },
  IOMMU_VIOMMU_ALLOC: {
    request: IOMMU_VIOMMU_ALLOC,
    struct: 'iommu_viommu_alloc',
    minSizeField: 'out_viommu_id',
    doc: 'Create a vIOMMU over a nesting-parent HWPT.',
  },
  IOMMU_VDEVICE_ALLOC: {
    request: IOMMU_VDEVICE_ALLOC,
    struct: 'iommu_vdevice_alloc',
    minSizeField: 'virt_id',
    doc: "Register a device with a vIOMMU under the guest's id.",
  },
  IOMMU_IOAS_CHANGE_PROCESS: {
    request: IOMMU_IOAS_CHANGE_PROCESS,
    struct: 'iommu_ioas_change_process',
    minSizeField: '__reserved',
    doc: 'Move pinned-memory accounting to the calling process.',
  },
  IOMMU_VEVENTQ_ALLOC: {
    request: IOMMU_VEVENTQ_ALLOC,
    struct: 'iommu_veventq_alloc',
    minSizeField: 'out_veventq_fd',
    doc: 'Create a vEVENT queue and its fd.',
  },
  IOMMU_HW_QUEUE_ALLOC: {
    request: IOMMU_HW_QUEUE_ALLOC,
    struct: 'iommu_hw_queue_alloc',
    minSizeField: 'length',
    doc: 'Give the hardware a queue in guest memory.',
  },
  IOMMU_TEST_CMD: {
    request: IOMMU_TEST_CMD,
    struct: 'iommu_test_cmd',
    minSizeField: 'last',
    doc: 'Run one selftest operation (CONFIG_IOMMUFD_TEST only).',
    selftest: true,
  },
  VFIO_DEVICE_BIND_IOMMUFD: {
    request: VFIO_DEVICE_BIND_IOMMUFD,
    struct: 'vfio_device_bind_iommufd',
    minSizeField: 'out_devid',
    doc: 'Bind a VFIO device cdev to an iommufd.',
    copyRule: 'vfio-bind',
    flagExtensions: [
      ['VFIO_DEVICE_BIND_FLAG_TOKEN', VFIO_DEVICE_BIND_FLAG_TOKEN, 'token_uuid_ptr'],
    ],
  },
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: {
    request: VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    struct: 'vfio_device_attach_iommufd_pt',
    minSizeField: 'pt_id',
    doc: 'Attach a VFIO device (or a PASID of it) to an IOAS or HWPT.',
    copyRule: 'vfio-attach',
    flagExtensions: [['VFIO_DEVICE_ATTACH_PASID', VFIO_DEVICE_ATTACH_PASID, 'pasid']],
  },
  VFIO_DEVICE_DETACH_IOMMUFD_PT: {
    request: VFIO_DEVICE_DETACH_IOMMUFD_PT,
    struct: 'vfio_device_detach_iommufd_pt',
    minSizeField: 'flags',
    doc: 'Detach a VFIO device (or a PASID of it).',
    copyRule: 'vfio-detach',
    flagExtensions: [['VFIO_DEVICE_DETACH_PASID', VFIO_DEVICE_DETACH_PASID, 'pasid']],
  },
} satisfies Record<string, Definition>;

/** The macro name of an ioctl the package knows, for example `'IOMMU_IOAS_MAP'`. */
export type IoctlName = keyof typeof definitions;

/**
 * Every ioctl of the modelled uAPI by its macro name: the 21 iommufd
 * commands, IOMMU_TEST_CMD, and the three VFIO device cdev commands.
 *
 * @example ioctls.IOMMU_IOAS_MAP // { request: 0x3b85, struct: 'iommu_ioas_map', minSize: 40, ... }
 */
export const ioctls: Readonly<Record<IoctlName, IoctlInfo>> = Object.freeze(
  Object.fromEntries(
    Object.entries(definitions).map(([name, d]) => [name, define(name, d as Definition)]),
  ) as Record<IoctlName, IoctlInfo>,
);

const byRequest = new Map(Object.values(ioctls).map((info) => [info.request, info]));

/** The ioctl with this request number, or undefined. */
export function ioctlByRequest(request: number): IoctlInfo | undefined {
  return byRequest.get(request);
}
