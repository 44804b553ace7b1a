import { describe, expect, it } from 'vitest';
import {
  _IO,
  _IOC,
  _IOC_DIR,
  _IOC_NR,
  _IOC_READ,
  _IOC_SIZE,
  _IOC_TYPE,
  _IOC_WRITE,
  IOMMU_DESTROY,
  IOMMU_IOAS_MAP,
  IOMMU_TEST_CMD,
  IOMMUFD_CMD_BASE,
  IOMMUFD_CMD_IOAS_MAP,
  IOMMUFD_TYPE,
  ioctlByRequest,
  ioctls,
  structs,
  VFIO_DEVICE_BIND_IOMMUFD,
} from '../src/index.js';

describe('request encoding', () => {
  it('builds and takes apart requests as asm-generic ioctl.h does', () => {
    expect(_IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)).toBe(0x3b85);
    const r = _IOC(_IOC_READ | _IOC_WRITE, 0x3b, 0x42, 48);
    expect(r).toBe(0xc0303b42);
    expect([_IOC_DIR(r), _IOC_TYPE(r), _IOC_NR(r), _IOC_SIZE(r)]).toEqual([3, 0x3b, 0x42, 48]);
  });

  it('names the requests the issue calls out', () => {
    expect(IOMMU_IOAS_MAP).toBe(0x3b85);
    expect(IOMMU_DESTROY).toBe(0x3b80);
    expect(IOMMU_TEST_CMD).toBe(_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32));
    expect(VFIO_DEVICE_BIND_IOMMUFD).toBe(0x3b76);
  });

  it('finds an ioctl by its request number and nothing else', () => {
    for (const info of Object.values(ioctls)) expect(ioctlByRequest(info.request)).toBe(info);
    expect(ioctlByRequest(0x3b7f)).toBeUndefined();
    expect(ioctlByRequest(0x1285)).toBeUndefined();
  });

  it('every ioctl names a struct of the table, with its size', () => {
    for (const info of Object.values(ioctls)) {
      expect(structs[info.struct].sizeof).toBe(info.size);
      expect(info.minSize).toBeLessThanOrEqual(info.size);
      expect(info.selftest).toBe(info.name === 'IOMMU_TEST_CMD');
    }
  });
});
