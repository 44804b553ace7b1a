/**
 * The multi-SID extension's uAPI (not in Linux): the two ioctl numbers on
 * IOMMUFD_TYPE ';' outside the kernel's command range, and the codecs of
 * struct iommufd_ext_vdevice_sids (16 bytes) and iommufd_ext_vdevice_vsid
 * (24 bytes): byte-exact little-endian layouts that round-trip.
 */
import { _IOC_NR, _IOC_TYPE, IOMMUFD_TYPE } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeExtVdeviceSids,
  decodeExtVdeviceVsid,
  EXT_VDEVICE_SIDS_SIZE,
  EXT_VDEVICE_VSID_SIZE,
  encodeExtVdeviceSids,
  encodeExtVdeviceVsid,
  IOMMUFD_EXT_VDEVICE_GET_SIDS,
  IOMMUFD_EXT_VDEVICE_SET_VSID,
} from '../src/index.js';

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

describe('the ioctl numbers', () => {
  it("are _IO(';', 0xc0) and _IO(';', 0xc1): iommufd's type, past the kernel's commands (0x80-0x94) and IOMMU_TEST_CMD (0xa0)", () => {
    expect(IOMMUFD_EXT_VDEVICE_GET_SIDS).toBe(0x3bc0);
    expect(IOMMUFD_EXT_VDEVICE_SET_VSID).toBe(0x3bc1);
    for (const req of [IOMMUFD_EXT_VDEVICE_GET_SIDS, IOMMUFD_EXT_VDEVICE_SET_VSID]) {
      expect(_IOC_TYPE(req)).toBe(IOMMUFD_TYPE);
      expect(_IOC_NR(req)).toBeGreaterThan(0xa0);
    }
  });
});

describe('struct iommufd_ext_vdevice_sids', () => {
  it('is 16 bytes: size, vdevice_id, out_num_sids, __reserved, little-endian u32s', () => {
    expect(EXT_VDEVICE_SIDS_SIZE).toBe(16);
    const b = encodeExtVdeviceSids({ vdeviceId: 0x0102_0304, outNumSids: 3 });
    expect([...b]).toEqual([16, 0, 0, 0, 4, 3, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('round-trips every value', () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, (size, vdeviceId, outNumSids, reserved) => {
        const v = { size, vdeviceId, outNumSids, reserved };
        expect(decodeExtVdeviceSids(encodeExtVdeviceSids(v))).toEqual(v);
      }),
    );
  });

  it('decodes a struct that starts inside a larger buffer', () => {
    const big = new Uint8Array(32);
    big.set(encodeExtVdeviceSids({ vdeviceId: 9, outNumSids: 2 }), 8);
    expect(decodeExtVdeviceSids(big.subarray(8))).toEqual({
      size: 16,
      vdeviceId: 9,
      outNumSids: 2,
      reserved: 0,
    });
  });
});

describe('struct iommufd_ext_vdevice_vsid', () => {
  it('is 24 bytes: size, vdevice_id, index, __reserved, then an aligned u64 virt_id', () => {
    expect(EXT_VDEVICE_VSID_SIZE).toBe(24);
    const b = encodeExtVdeviceVsid({ vdeviceId: 5, index: 2, virtId: 0x1122_3344_5566_7788n });
    expect([...b]).toEqual([
      24, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22,
      0x11,
    ]);
  });

  it('round-trips every value, virt_id over the full 64 bits', () => {
    fc.assert(
      fc.property(
        u32,
        u32,
        u32,
        u32,
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (size, vdeviceId, index, reserved, virtId) => {
          const v = { size, vdeviceId, index, reserved, virtId };
          expect(decodeExtVdeviceVsid(encodeExtVdeviceVsid(v))).toEqual(v);
        },
      ),
    );
  });

  it('defaults: size is the struct size, everything else 0', () => {
    expect(decodeExtVdeviceVsid(encodeExtVdeviceVsid({}))).toEqual({
      size: 24,
      vdeviceId: 0,
      index: 0,
      reserved: 0,
      virtId: 0n,
    });
    expect(decodeExtVdeviceSids(encodeExtVdeviceSids({}))).toEqual({
      size: 16,
      vdeviceId: 0,
      outNumSids: 0,
      reserved: 0,
    });
  });
});
