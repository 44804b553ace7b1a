/**
 * The constants of `drivers/iommu/iommufd/iommufd_test.h` (Linux 6.17): the
 * IOMMU_TEST_CMD operations and the selftest mock's flags, limits and data
 * types. They exist only in a kernel built with CONFIG_IOMMUFD_TEST.
 */
import { defineEnum, type EnumInfo } from './enum-info.js';

const H = 'drivers/iommu/iommufd/iommufd_test.h';

/** IOMMU_TEST_CMD op: reserve an IOVA range of an IOAS, as a hardware reserved region would. */
export const IOMMU_TEST_OP_ADD_RESERVED = 1;
/** IOMMU_TEST_CMD op: create a mock device, bind it and attach it to an IOAS or HWPT. */
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
/** IOMMU_TEST_CMD op: check that a mock paging domain maps an IOVA range to the pages behind a user buffer. */
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
/** IOMMU_TEST_CMD op: check the pin count of every page of a user buffer. */
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
/** IOMMU_TEST_CMD op: create an in-kernel access (an emulated device) on an IOAS; returns an fd. */
export const IOMMU_TEST_OP_CREATE_ACCESS = 5;
/** IOMMU_TEST_CMD op: unpin pages an access pinned. */
export const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6;
/** IOMMU_TEST_CMD op: pin an IOVA range through an access. */
export const IOMMU_TEST_OP_ACCESS_PAGES = 7;
/** IOMMU_TEST_CMD op: read or write an IOVA range through an access. */
export const IOMMU_TEST_OP_ACCESS_RW = 8;
/** IOMMU_TEST_CMD op: set the size of the temporary page batches (a test knob). */
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;
/** IOMMU_TEST_CMD op: replace a mock device's attachment. */
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
/** IOMMU_TEST_CMD op: move an access to another IOAS. */
export const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11;
/** IOMMU_TEST_CMD op: MOCK_DOMAIN with device flags (no dirty tracking, huge IOVA, PASID). */
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;
/** IOMMU_TEST_CMD op: mark IOVA pages of a mock domain dirty, as device writes would. */
export const IOMMU_TEST_OP_DIRTY = 13;
/** IOMMU_TEST_CMD op: check one IOTLB slot of a mock nested domain. */
export const IOMMU_TEST_OP_MD_CHECK_IOTLB = 14;
/** IOMMU_TEST_CMD op: report a page request from a mock device. */
export const IOMMU_TEST_OP_TRIGGER_IOPF = 15;
/** IOMMU_TEST_CMD op: check one cache slot of a mock device. */
export const IOMMU_TEST_OP_DEV_CHECK_CACHE = 16;
/** IOMMU_TEST_CMD op: report a mock vEVENT for a device behind a vIOMMU. */
export const IOMMU_TEST_OP_TRIGGER_VEVENT = 17;
/** IOMMU_TEST_CMD op: attach a PASID of a mock device. */
export const IOMMU_TEST_OP_PASID_ATTACH = 18;
/** IOMMU_TEST_CMD op: replace the attachment of a PASID of a mock device. */
export const IOMMU_TEST_OP_PASID_REPLACE = 19;
/** IOMMU_TEST_CMD op: detach a PASID of a mock device. */
export const IOMMU_TEST_OP_PASID_DETACH = 20;
/** IOMMU_TEST_CMD op: check which HWPT a PASID of a mock device is attached to. */
export const IOMMU_TEST_OP_PASID_CHECK_HWPT = 21;

/** The first IOVA of the mock paging domain's aperture (16 MiB). */
export const MOCK_APERTURE_START = 1 << 24;
/** The last IOVA of the mock paging domain's aperture (2 GiB - 1). */
export const MOCK_APERTURE_LAST = 2 ** 31 - 1;

/** ACCESS_PAGES flag: pin for writing. */
export const MOCK_FLAGS_ACCESS_WRITE = 1 << 0;
/** ACCESS_PAGES / ACCESS_RW flag used by syzkaller runs. */
export const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;

/** ACCESS_RW flag: write into the IOAS (clear: read from it). */
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
/** ACCESS_RW flag: force the page-by-page path. */
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;

/** CREATE_ACCESS flag: the access pins pages (ACCESS_PAGES is allowed). */
export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;

/** MOCK_DOMAIN_FLAGS device flag: the device cannot track dirty pages. */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
/** MOCK_DOMAIN_FLAGS device flag: the device's domain also has a 1 MiB page size. */
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;
/** MOCK_DOMAIN_FLAGS device flag: the device supports PASID (20 bits). */
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;

/** The highest IOTLB slot of a mock nested domain. */
export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
/** The number of IOTLB slots of a mock nested domain. */
export const MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;

/** The highest cache slot of a mock device. */
export const MOCK_DEV_CACHE_ID_MAX = 3;
/** The number of cache slots of a mock device. */
export const MOCK_DEV_CACHE_NUM = 4;

/** The PASID whose attach arms a one-shot failure of the next set (the PASID 1024 trick). */
export const IOMMU_TEST_PASID_RESERVED = 1024;
/** The PASID width of a MOCK_FLAGS_DEVICE_PASID device. */
export const MOCK_PASID_WIDTH = 20;
/** GET_HW_INFO type of the mock IOMMU: `iommu_test_hw_info`. */
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
/** The value the mock reports in `iommu_test_hw_info.test_reg`. */
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
/** HWPT_ALLOC data type of a mock nested domain: `iommu_hwpt_selftest`. */
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
/** The value selftests put in `iommu_hwpt_selftest.iotlb`. */
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
/** The value each mock device cache slot starts with. */
export const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;
/** HWPT_INVALIDATE data type of a mock nested domain: `iommu_hwpt_invalidate_selftest`. */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/** An invalidation data type the mock rejects, for negative tests. */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
/** Mock invalidation flag: every slot. */
export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1 << 0;
/** vIOMMU type of the mock. */
export const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
/** vIOMMU invalidation data type of the mock: `iommu_viommu_invalidate_selftest`. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/** A vIOMMU invalidation data type the mock rejects, for negative tests. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
/** vEVENTQ type of the mock: payload `iommu_viommu_event_selftest`. */
export const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
/** HW queue type of the mock. */
export const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
/** The number of HW queues a mock vIOMMU accepts. */
export const IOMMU_TEST_HW_QUEUE_MAX = 2;

function group(name: string, kind: EnumInfo['kind'], constants: Record<string, number>): EnumInfo {
  return defineEnum(name, H, kind, constants);
}

/** The enums of iommufd_test.h; the header leaves them anonymous, so they are named here. */
export const iommufdTestEnums = [
  group('iommu_test_op', 'values', {
    IOMMU_TEST_OP_ADD_RESERVED,
    IOMMU_TEST_OP_MOCK_DOMAIN,
    IOMMU_TEST_OP_MD_CHECK_MAP,
    IOMMU_TEST_OP_MD_CHECK_REFS,
    IOMMU_TEST_OP_CREATE_ACCESS,
    IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
    IOMMU_TEST_OP_ACCESS_PAGES,
    IOMMU_TEST_OP_ACCESS_RW,
    IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
    IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
    IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
    IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
    IOMMU_TEST_OP_DIRTY,
    IOMMU_TEST_OP_MD_CHECK_IOTLB,
    IOMMU_TEST_OP_TRIGGER_IOPF,
    IOMMU_TEST_OP_DEV_CHECK_CACHE,
    IOMMU_TEST_OP_TRIGGER_VEVENT,
    IOMMU_TEST_OP_PASID_ATTACH,
    IOMMU_TEST_OP_PASID_REPLACE,
    IOMMU_TEST_OP_PASID_DETACH,
    IOMMU_TEST_OP_PASID_CHECK_HWPT,
  }),
  group('mock_aperture', 'values', { MOCK_APERTURE_START, MOCK_APERTURE_LAST }),
  group('mock_access_flags', 'flags', { MOCK_FLAGS_ACCESS_WRITE, MOCK_FLAGS_ACCESS_SYZ }),
  group('mock_access_rw_flags', 'flags', { MOCK_ACCESS_RW_WRITE, MOCK_ACCESS_RW_SLOW_PATH }),
  group('mock_access_create_flags', 'flags', { MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES }),
  group('mock_device_flags', 'flags', {
    MOCK_FLAGS_DEVICE_NO_DIRTY,
    MOCK_FLAGS_DEVICE_HUGE_IOVA,
    MOCK_FLAGS_DEVICE_PASID,
  }),
  group('mock_nested_domain_iotlb', 'values', {
    MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
    MOCK_NESTED_DOMAIN_IOTLB_NUM,
  }),
  group('mock_dev_cache', 'values', { MOCK_DEV_CACHE_ID_MAX, MOCK_DEV_CACHE_NUM }),
  group('iommu_test_invalidate_flags', 'flags', { IOMMU_TEST_INVALIDATE_FLAG_ALL }),
];
