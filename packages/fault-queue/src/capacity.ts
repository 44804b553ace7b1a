/**
 * How many fixed-size records a ring of a given byte size holds: the
 * arithmetic behind the 2019 discussion that proposed growing a user-space
 * fault record from 48 to 128 bytes (85 / 1365 records of 48 bytes in a 4 KiB /
 * 64 KiB ring, 64 / 1024 of 64 bytes, 32 / 512 of 128 bytes).
 */

/**
 * The record sizes the rings are usually built with: 40 (`iommu_hwpt_pgfault`,
 * what the 6.17 fault fd returns), 48 (the pre-iommufd `iommu_fault`), 64 and
 * 128 (the padded sizes proposed so fields could be added without a new ABI).
 * Any positive multiple of 4 works.
 */
export const RECORD_SIZES: readonly number[] = Object.freeze([40, 48, 64, 128]);

/** The ring sizes of that discussion: 4 KiB and 64 KiB. */
export const RING_BYTES: readonly number[] = Object.freeze([4096, 65536]);

/**
 * The number of whole `recordSize`-byte records that fit in `ringBytes`
 * (`floor(ringBytes / recordSize)`: records are never split across the end).
 * Throws RangeError unless both are positive integers.
 */
export function ringCapacity(ringBytes: number, recordSize: number): number {
  if (!Number.isSafeInteger(ringBytes) || ringBytes < 0) {
    throw new RangeError(`ring size ${ringBytes} is not a byte count`);
  }
  if (!Number.isSafeInteger(recordSize) || recordSize <= 0) {
    throw new RangeError(`record size ${recordSize} is not a positive integer`);
  }
  return Math.floor(ringBytes / recordSize);
}

/** One row of {@link capacityTable}: a record size and its capacity in each ring size. */
export interface CapacityRow {
  /** Bytes per record. */
  readonly recordSize: number;
  /** Records held, one entry per ring size, in the order the ring sizes were given. */
  readonly records: readonly number[];
}

/**
 * The capacity of every ring size for every record size; with the defaults,
 * the table of the 48 → 128-byte discussion (plus the 40-byte 6.17 record).
 */
export function capacityTable(
  recordSizes: readonly number[] = RECORD_SIZES,
  ringBytes: readonly number[] = RING_BYTES,
): CapacityRow[] {
  return recordSizes.map((recordSize) => ({
    recordSize,
    records: ringBytes.map((bytes) => ringCapacity(bytes, recordSize)),
  }));
}
