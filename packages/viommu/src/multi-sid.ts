/**
 * The multi-SID extension: a vDEVICE for a device with several stream IDs
 * (common on platform devices), each endpoint i mapping a guest vSID_i one to
 * one onto the device's i-th physical stream id. Linux 6.17 has no such
 * thing (the SMMUv3 vIOMMU translates a vSID to `streams[0]` only); the
 * vIOMMU design discussion asked that the uAPI leave room for it, shaped
 * like VFIO's IRQ info / set: ask how many endpoints a device has, then set
 * the virtual id of each.
 *
 * The model offers it only when the host opts in (`viommu.multiSid`), as two
 * ioctls on /dev/iommu outside the kernel's command range; without the
 * opt-in they answer ENOTTY like any unknown ioctl. The layouts:
 *
 * ```c
 * struct iommufd_ext_vdevice_sids {   // IOMMUFD_EXT_VDEVICE_GET_SIDS, _IO(';', 0xc0)
 *     __u32 size;          // 16
 *     __u32 vdevice_id;    // in
 *     __u32 out_num_sids;  // out: physical stream ids of the device
 *     __u32 __reserved;    // must be 0
 * };
 * struct iommufd_ext_vdevice_vsid {   // IOMMUFD_EXT_VDEVICE_SET_VSID, _IO(';', 0xc1)
 *     __u32 size;          // 24
 *     __u32 vdevice_id;    // in
 *     __u32 index;         // in: endpoint 1 .. out_num_sids - 1 (0 is the vDEVICE's virt_id)
 *     __u32 __reserved;    // must be 0
 *     __aligned_u64 virt_id; // in: the guest's id for that endpoint, unique in the vIOMMU
 * };
 * ```
 */

/** IOMMUFD_EXT_VDEVICE_GET_SIDS: _IO(IOMMUFD_TYPE, 0xc0). */
export const IOMMUFD_EXT_VDEVICE_GET_SIDS = 0x3bc0;
/** IOMMUFD_EXT_VDEVICE_SET_VSID: _IO(IOMMUFD_TYPE, 0xc1). */
export const IOMMUFD_EXT_VDEVICE_SET_VSID = 0x3bc1;

/** sizeof(struct iommufd_ext_vdevice_sids). */
export const EXT_VDEVICE_SIDS_SIZE = 16;
/** sizeof(struct iommufd_ext_vdevice_vsid). */
export const EXT_VDEVICE_VSID_SIZE = 24;

/** struct iommufd_ext_vdevice_sids, decoded. */
export interface ExtVdeviceSids {
  readonly size: number;
  readonly vdeviceId: number;
  readonly outNumSids: number;
  readonly reserved: number;
}

/** struct iommufd_ext_vdevice_vsid, decoded. */
export interface ExtVdeviceVsid {
  readonly size: number;
  readonly vdeviceId: number;
  readonly index: number;
  readonly reserved: number;
  readonly virtId: bigint;
}

/** Encode a GET_SIDS argument. */
export function encodeExtVdeviceSids(v: Partial<ExtVdeviceSids>): Uint8Array {
  const out = new Uint8Array(EXT_VDEVICE_SIDS_SIZE);
  const d = new DataView(out.buffer);
  d.setUint32(0, v.size ?? EXT_VDEVICE_SIDS_SIZE, true);
  d.setUint32(4, v.vdeviceId ?? 0, true);
  d.setUint32(8, v.outNumSids ?? 0, true);
  d.setUint32(12, v.reserved ?? 0, true);
  return out;
}

/** Decode a GET_SIDS argument. */
export function decodeExtVdeviceSids(bytes: Uint8Array): ExtVdeviceSids {
  const d = new DataView(bytes.buffer, bytes.byteOffset, EXT_VDEVICE_SIDS_SIZE);
  return {
    size: d.getUint32(0, true),
    vdeviceId: d.getUint32(4, true),
    outNumSids: d.getUint32(8, true),
    reserved: d.getUint32(12, true),
  };
}

/** Encode a SET_VSID argument. */
export function encodeExtVdeviceVsid(v: Partial<ExtVdeviceVsid>): Uint8Array {
  const out = new Uint8Array(EXT_VDEVICE_VSID_SIZE);
  const d = new DataView(out.buffer);
  d.setUint32(0, v.size ?? EXT_VDEVICE_VSID_SIZE, true);
  d.setUint32(4, v.vdeviceId ?? 0, true);
  d.setUint32(8, v.index ?? 0, true);
  d.setUint32(12, v.reserved ?? 0, true);
  d.setBigUint64(16, v.virtId ?? 0n, true);
  return out;
}

/** Decode a SET_VSID argument. */
export function decodeExtVdeviceVsid(bytes: Uint8Array): ExtVdeviceVsid {
  const d = new DataView(bytes.buffer, bytes.byteOffset, EXT_VDEVICE_VSID_SIZE);
  return {
    size: d.getUint32(0, true),
    vdeviceId: d.getUint32(4, true),
    index: d.getUint32(8, true),
    reserved: d.getUint32(12, true),
    virtId: d.getBigUint64(16, true),
  };
}
