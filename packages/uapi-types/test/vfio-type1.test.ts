// The VFIO type1 structs, constants and container requests. The ABI fixtures
// (compiled from iommufd.h and the three cdev structs) do not contain them, so
// the Linux x86-64 numbers of include/uapi/linux/vfio.h are written out here.
import { describe, expect, it } from 'vitest';
import * as uapi from '../src/index.js';
import {
  _IOC_DIR,
  _IOC_NR,
  _IOC_SIZE,
  _IOC_TYPE,
  enums,
  flagNames,
  ioctlByRequest,
  type StructName,
  structs,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_MAP_DMA,
  vfioContainerIoctlByRequest,
  vfioContainerIoctls,
} from '../src/index.js';

const exported = uapi as unknown as Record<string, unknown>;

interface Expected {
  sizeof: number;
  /** Omitted where the C struct ends in a flexible array the schema does not carry. */
  alignof?: number;
  fields: Record<string, [offset: number, size: number, cType: string]>;
}

// sizeof, alignof and offsetof as gcc lays out vfio.h on x86-64.
const LINUX: Record<string, Expected> = {
  vfio_info_cap_header: {
    sizeof: 8,
    alignof: 4,
    fields: { id: [0, 2, '__u16'], version: [2, 2, '__u16'], next: [4, 4, '__u32'] },
  },
  vfio_iommu_type1_info: {
    sizeof: 24,
    alignof: 8,
    fields: {
      argsz: [0, 4, '__u32'],
      flags: [4, 4, '__u32'],
      iova_pgsizes: [8, 8, '__aligned_u64'],
      cap_offset: [16, 4, '__u32'],
      pad: [20, 4, '__u32'],
    },
  },
  vfio_iova_range: {
    sizeof: 16,
    alignof: 8,
    fields: { start: [0, 8, '__u64'], end: [8, 8, '__u64'] },
  },
  vfio_iommu_type1_info_cap_iova_range: {
    // gcc says alignof 8: the flexible iova_ranges[] of 8-aligned elements.
    sizeof: 16,
    fields: {
      header: [0, 8, 'struct'],
      'header.id': [0, 2, '__u16'],
      'header.version': [2, 2, '__u16'],
      'header.next': [4, 4, '__u32'],
      nr_iovas: [8, 4, '__u32'],
      reserved: [12, 4, '__u32'],
    },
  },
  vfio_iommu_type1_info_dma_avail: {
    sizeof: 12,
    alignof: 4,
    fields: {
      header: [0, 8, 'struct'],
      'header.id': [0, 2, '__u16'],
      'header.version': [2, 2, '__u16'],
      'header.next': [4, 4, '__u32'],
      avail: [8, 4, '__u32'],
    },
  },
  vfio_iommu_type1_dma_map: {
    sizeof: 32,
    alignof: 8,
    fields: {
      argsz: [0, 4, '__u32'],
      flags: [4, 4, '__u32'],
      vaddr: [8, 8, '__u64'],
      iova: [16, 8, '__u64'],
      size: [24, 8, '__u64'],
    },
  },
  vfio_iommu_type1_dma_unmap: {
    sizeof: 24,
    alignof: 8,
    fields: {
      argsz: [0, 4, '__u32'],
      flags: [4, 4, '__u32'],
      iova: [8, 8, '__u64'],
      size: [16, 8, '__u64'],
    },
  },
};

describe('the VFIO type1 structs', () => {
  it.each(Object.keys(LINUX))('%s: sizeof, alignof and every offset match Linux', (name) => {
    const expected = LINUX[name] as Expected;
    const ours = structs[name as StructName];
    expect(ours.header).toBe('include/uapi/linux/vfio.h');
    expect(ours.sizeof).toBe(expected.sizeof);
    if (expected.alignof !== undefined) expect(ours.alignof).toBe(expected.alignof);
    const fields = ours.fields as Record<string, uapi.FieldInfo>;
    expect(Object.keys(fields).sort()).toEqual(Object.keys(expected.fields).sort());
    for (const [path, [offset, size, cType]] of Object.entries(expected.fields)) {
      expect(fields[path], `${name}.${path}`).toMatchObject({ offset, size, cType });
    }
  });

  it('the flexible arrays start where the fixed parts end, 8-aligned', () => {
    // iova_ranges[] of vfio_iova_range at 16; dma_unmap's data[] at 24.
    expect(structs.vfio_iommu_type1_info_cap_iova_range.sizeof % 8).toBe(0);
    expect(structs.vfio_iommu_type1_info_cap_iova_range.sizeof).toBe(16);
    expect(structs.vfio_iommu_type1_dma_unmap.sizeof).toBe(24);
  });

  it('encode and decode put the capability header where a C reader finds it', () => {
    const bytes = structs.vfio_iommu_type1_info_dma_avail.encode({
      header: { id: 3, version: 1, next: 0x28 },
      avail: 0xffffffff,
    });
    expect([...bytes]).toEqual([3, 0, 1, 0, 0x28, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    const map = structs.vfio_iommu_type1_dma_map.decode(
      structs.vfio_iommu_type1_dma_map.encode({
        argsz: 32,
        flags: 3,
        vaddr: 1n << 40n,
        size: 4096n,
      }),
    );
    expect(map).toEqual({ argsz: 32, flags: 3, vaddr: 1n << 40n, iova: 0n, size: 4096n });
  });
});

describe('the VFIO type1 constants', () => {
  const LINUX_CONSTANTS: Record<string, number> = {
    VFIO_API_VERSION: 0,
    VFIO_TYPE1_IOMMU: 1,
    VFIO_SPAPR_TCE_IOMMU: 2,
    VFIO_TYPE1v2_IOMMU: 3,
    VFIO_DMA_CC_IOMMU: 4,
    VFIO_EEH: 5,
    __VFIO_RESERVED_TYPE1_NESTING_IOMMU: 6,
    VFIO_SPAPR_TCE_v2_IOMMU: 7,
    VFIO_NOIOMMU_IOMMU: 8,
    VFIO_UNMAP_ALL: 9,
    VFIO_UPDATE_VADDR: 10,
    VFIO_IOMMU_INFO_PGSIZES: 1,
    VFIO_IOMMU_INFO_CAPS: 2,
    VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: 1,
    VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION: 2,
    VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: 3,
    VFIO_DMA_MAP_FLAG_READ: 1,
    VFIO_DMA_MAP_FLAG_WRITE: 2,
    VFIO_DMA_MAP_FLAG_VADDR: 4,
    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: 1,
    VFIO_DMA_UNMAP_FLAG_ALL: 2,
    VFIO_DMA_UNMAP_FLAG_VADDR: 4,
  };

  it.each(Object.entries(LINUX_CONSTANTS))('%s = %d', (name, value) => {
    expect(exported[name]).toBe(value);
  });

  it('every type1 enum constant is one of them, under the same value', () => {
    for (const name of [
      'vfio_extension',
      'vfio_iommu_type1_info_flags',
      'vfio_iommu_type1_info_cap_id',
      'vfio_iommu_type1_dma_map_flags',
      'vfio_iommu_type1_dma_unmap_flags',
    ]) {
      const e = enums[name];
      expect(e?.header, name).toBe('include/uapi/linux/vfio.h');
      for (const [c, v] of Object.entries(e?.constants ?? {}))
        expect(LINUX_CONSTANTS[c], c).toBe(v);
    }
    expect(flagNames('vfio_iommu_type1_dma_unmap_flags', VFIO_DMA_UNMAP_FLAG_ALL | 8)).toEqual([
      'VFIO_DMA_UNMAP_FLAG_ALL',
      '0x8',
    ]);
  });
});

describe('the VFIO container requests', () => {
  // _IO(';', VFIO_BASE + n): no size and no direction in the number, as vfio.h defines them.
  const LINUX_REQUESTS: Record<string, number> = {
    VFIO_GET_API_VERSION: 0x3b64,
    VFIO_CHECK_EXTENSION: 0x3b65,
    VFIO_SET_IOMMU: 0x3b66,
    VFIO_IOMMU_GET_INFO: 0x3b70,
    VFIO_IOMMU_MAP_DMA: 0x3b71,
    VFIO_IOMMU_UNMAP_DMA: 0x3b72,
    VFIO_IOMMU_DIRTY_PAGES: 0x3b75,
  };

  it.each(Object.entries(LINUX_REQUESTS))('%s = 0x%s', (name, request) => {
    expect(exported[name]).toBe(request);
    expect([_IOC_TYPE(request), _IOC_DIR(request), _IOC_SIZE(request)]).toEqual([0x3b, 0, 0]);
    expect(_IOC_NR(request)).toBeLessThan(uapi.IOMMUFD_CMD_BASE);
  });

  it('describes each request the iommufd fd answers, with the fixed part the kernel reads', () => {
    expect(Object.keys(vfioContainerIoctls)).toEqual([
      'VFIO_GET_API_VERSION',
      'VFIO_CHECK_EXTENSION',
      'VFIO_SET_IOMMU',
      'VFIO_IOMMU_GET_INFO',
      'VFIO_IOMMU_MAP_DMA',
      'VFIO_IOMMU_UNMAP_DMA',
    ]);
    expect(vfioContainerIoctls.VFIO_IOMMU_GET_INFO).toMatchObject({
      argument: 'struct',
      struct: 'vfio_iommu_type1_info',
      minSize: 16,
    });
    expect(vfioContainerIoctls.VFIO_IOMMU_MAP_DMA).toMatchObject({
      struct: 'vfio_iommu_type1_dma_map',
      minSize: 32,
    });
    expect(vfioContainerIoctls.VFIO_IOMMU_UNMAP_DMA).toMatchObject({
      struct: 'vfio_iommu_type1_dma_unmap',
      minSize: 24,
    });
    expect(vfioContainerIoctls.VFIO_CHECK_EXTENSION.argument).toBe('integer');
    expect(vfioContainerIoctls.VFIO_GET_API_VERSION.argument).toBe('none');
    for (const info of Object.values(vfioContainerIoctls)) {
      expect(vfioContainerIoctlByRequest(info.request)).toBe(info);
      expect(LINUX_REQUESTS[info.name]).toBe(info.request);
    }
    expect(vfioContainerIoctlByRequest(uapi.VFIO_IOMMU_DIRTY_PAGES)).toBeUndefined();
    // They are not iommufd commands: the size-extensible table does not hold them.
    expect(ioctlByRequest(VFIO_IOMMU_MAP_DMA)).toBeUndefined();
    expect(ioctlByRequest(VFIO_CHECK_EXTENSION)).toBeUndefined();
  });
});
