/**
 * Access objects through the selftest ops (kernel-semantics.md 2.20, 207–215,
 * and section 3's CREATE_ACCESS, ACCESS_PAGES, DESTROY_ACCESS_PAGES,
 * ACCESS_RW and ACCESS_REPLACE_IOAS), after iommufd.c's access_* tests.
 */
import {
  EADDRINUSE,
  EBADE,
  EBADFD,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOMEM,
  EOPNOTSUPP,
  EPERM,
  IOMMU_IOAS_MAP_READABLE,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_ACCESS_WRITE,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import type { Host, Process } from '../src/index.js';
import {
  checkMap,
  checkRefs,
  copy,
  destroy,
  ioasAlloc,
  iovaRanges,
  map,
  mockDomain,
  PAGE,
  setup,
  unmap,
} from './helpers.js';
import {
  accessPages,
  accessReplaceIoas,
  accessRw,
  checkAccessRw,
  createAccess,
  destroyAccessPages,
  filledBuffer,
  firstDifference,
  objectsOf,
} from './helpers-c.js';

const NEEDS_PIN = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;
const BUFFER_PAGES = 16;
const BUFFER = BigInt(BUFFER_PAGES) * PAGE;
const APERTURE = BigInt(MOCK_APERTURE_START);

/** The iommufd_ioas fixture: an IOAS, optionally a mock domain on it, and a 16-page buffer. */
function fixture(withDomain: boolean, seed = 1) {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const md = withDomain ? mockDomain(proc, fd, ioas) : undefined;
  if (md !== undefined) expect(md.rc).toBe(0);
  const buffer = filledBuffer(proc, Number(BUFFER), seed);
  return { host, proc, fd, ioas, md, buffer };
}

/** Teardown as teardown_iommufd does: close, then nothing pinned and no model exception. */
function teardown(host: Host, proc: Process, fd: number, buffer: bigint): void {
  expect(proc.close(fd)).toBe(0);
  const check = proc.open('/dev/iommu');
  expect(checkRefs(proc, check, buffer, BUFFER, 0)).toBe(0);
  expect(proc.close(check)).toBe(0);
  expect(host.pinnedPages()).toBe(0);
  expect(host.internalErrors).toBe(0);
}

function errnoOf(proc: Process): string | undefined {
  return proc.lastError()?.name;
}

describe('2.20 access objects', () => {
  it('207: ACCESS_PAGES through an access created without NEEDS_PIN_PAGES → EOPNOTSUPP, nothing pinned', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const { rc, accessFd } = createAccess(proc, fd, ioas, 0);
    expect(rc).toBe(0);
    expect(accessPages(proc, fd, accessFd, APERTURE, PAGE, buffer).rc).toBe(-EOPNOTSUPP);
    expect(errnoOf(proc)).toBe('EOPNOTSUPP');
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    // The same range pins fine through a pinning access.
    const pin = createAccess(proc, fd, ioas, NEEDS_PIN);
    expect(pin.rc).toBe(0);
    expect(accessPages(proc, fd, pin.accessFd, APERTURE, PAGE, buffer).rc).toBe(0);
    expect(checkRefs(proc, fd, buffer, PAGE, 1)).toBe(0);
    expect(proc.close(pin.accessFd)).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('208: pinning the same range twice gives two items, pinned once; destroying them in either order works', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const { accessFd } = createAccess(proc, fd, ioas, NEEDS_PIN);
    for (const order of [
      [0, 1],
      [1, 0],
    ]) {
      const a = accessPages(proc, fd, accessFd, APERTURE, BUFFER, buffer);
      const b = accessPages(proc, fd, accessFd, APERTURE, BUFFER, buffer);
      expect(a.rc).toBe(0);
      expect(b.rc).toBe(0);
      expect(b.item).toBe(a.item + 1);
      // Two users of one page still pin it once.
      expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
      expect(host.pinnedPages()).toBe(BUFFER_PAGES);
      const items = [a.item, b.item];
      const first = items[order[0] as number] as number;
      const second = items[order[1] as number] as number;
      expect(destroyAccessPages(proc, fd, accessFd, first)).toBe(0);
      expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
      expect(destroyAccessPages(proc, fd, accessFd, first)).toBe(-ENOENT);
      expect(destroyAccessPages(proc, fd, accessFd, second)).toBe(0);
      expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
      expect(host.pinnedPages()).toBe(0);
    }
    // Item ids count up per access: the second round got 2 and 3.
    expect(accessPages(proc, fd, accessFd, APERTURE, PAGE, buffer).item).toBe(4);
    expect(proc.close(accessFd)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  for (const withDomain of [false, true]) {
    it(`209+122: pinning 1..15 pages at the aperture start, then adding and removing a domain (${withDomain ? 'mock_domain' : 'no_domain'})`, () => {
      const { host, proc, fd, ioas, buffer } = fixture(withDomain);
      const { accessFd } = createAccess(proc, fd, ioas, NEEDS_PIN);
      for (let npages = 1; npages < BUFFER_PAGES; npages++) {
        const length = BigInt(npages) * PAGE;
        const rest = BUFFER - length;
        expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
        // Without a domain only the pinned pages are pinned; with one, everything is, once.
        const restRefs = withDomain ? 1 : 0;

        // Single pin and unpin.
        const single = accessPages(proc, fd, accessFd, APERTURE, length, buffer);
        expect(single.rc).toBe(0);
        expect(checkRefs(proc, fd, buffer, length, 1)).toBe(0);
        expect(checkRefs(proc, fd, buffer + length, rest, restRefs)).toBe(0);
        expect(destroyAccessPages(proc, fd, accessFd, single.item)).toBe(0);
        expect(checkRefs(proc, fd, buffer, length, restRefs)).toBe(0);

        // Double user.
        const a = accessPages(proc, fd, accessFd, APERTURE, length, buffer);
        const b = accessPages(proc, fd, accessFd, APERTURE, length, buffer);
        expect([a.rc, b.rc]).toEqual([0, 0]);
        expect(checkRefs(proc, fd, buffer, length, 1)).toBe(0);
        expect(destroyAccessPages(proc, fd, accessFd, b.item)).toBe(0);
        expect(destroyAccessPages(proc, fd, accessFd, a.item)).toBe(0);

        // 122: add and remove a domain while the access holds pins.
        const held = accessPages(proc, fd, accessFd, APERTURE, length, buffer);
        expect(held.rc).toBe(0);
        const md = mockDomain(proc, fd, ioas);
        expect(md.rc).toBe(0);
        expect(checkMap(proc, fd, md.hwptId, APERTURE, BUFFER, buffer)).toBe(0);
        expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
        expect(destroy(proc, fd, md.stdevId)).toBe(0);
        expect(checkRefs(proc, fd, buffer, length, 1)).toBe(0);
        expect(checkRefs(proc, fd, buffer + length, rest, restRefs)).toBe(0);
        expect(destroyAccessPages(proc, fd, accessFd, held.item)).toBe(0);

        expect(unmap(proc, fd, ioas, APERTURE, BUFFER)).toEqual({ rc: 0, length: BUFFER });
        expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
      }
      expect(proc.close(accessFd)).toBe(0);
      teardown(host, proc, fd, buffer);
    });
  }

  it('210/81: DESTROY_ACCESS_PAGES of an unknown item → ENOENT; an unmap drops the item and its pins', () => {
    const { host, proc, fd, ioas, buffer } = fixture(true);
    const { accessFd } = createAccess(proc, fd, ioas, NEEDS_PIN);
    expect(destroyAccessPages(proc, fd, accessFd, 0)).toBe(-ENOENT);
    expect(errnoOf(proc)).toBe('ENOENT');
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const pinned = accessPages(proc, fd, accessFd, APERTURE, BUFFER, buffer);
    expect(pinned.rc).toBe(0);
    expect(destroyAccessPages(proc, fd, accessFd, pinned.item + 7)).toBe(-ENOENT);
    // The unmap calls the access's unmap callback, which unpins and forgets the item.
    expect(unmap(proc, fd, ioas, APERTURE, BUFFER)).toEqual({ rc: 0, length: BUFFER });
    expect(destroyAccessPages(proc, fd, accessFd, pinned.item)).toBe(-ENOENT);
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  for (const withDomain of [false, true]) {
    it(`211: ACCESS_RW of every length 1..63 around a page boundary is exact, fast and slow path (${withDomain ? 'mock_domain' : 'no_domain'})`, () => {
      const { host, proc, fd, ioas, buffer } = fixture(withDomain);
      const { rc, accessFd } = createAccess(proc, fd, ioas, 0);
      expect(rc).toBe(0);
      const mapped = map(proc, fd, ioas, buffer, BUFFER);
      expect(mapped.rc).toBe(0);
      checkAccessRw(proc, fd, accessFd, mapped.iova, buffer, BUFFER, 0, 2);
      checkAccessRw(proc, fd, accessFd, mapped.iova, buffer, BUFFER, MOCK_ACCESS_RW_SLOW_PATH, 3);
      expect(unmap(proc, fd, ioas, mapped.iova, BUFFER).rc).toBe(0);
      expect(proc.close(accessFd)).toBe(0);
      teardown(host, proc, fd, buffer);
    });
  }

  it('212: ACCESS_RW on an area that starts 2048 bytes past the aperture start is exact', () => {
    const { host, proc, fd, ioas, buffer, md } = fixture(true);
    const { accessFd } = createAccess(proc, fd, ioas, 0);
    const iova = APERTURE + 2048n;
    expect(map(proc, fd, ioas, buffer, BUFFER, iova).rc).toBe(0);
    expect(checkMap(proc, fd, md?.hwptId ?? 0, iova, BUFFER, buffer)).toBe(0);
    checkAccessRw(proc, fd, accessFd, iova, buffer, BUFFER, 0, 4);
    expect(unmap(proc, fd, ioas, iova, BUFFER).rc).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('213/91: an access pins in a domain-less IOAS, COPY fills a domain from it, and ACCESS_REPLACE_IOAS frees the old IOAS', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const hwpt = md?.hwptId ?? 0;
    const src = ioasAlloc(proc, fd);
    const srcMap = map(proc, fd, src, buffer, BUFFER);
    expect(srcMap.rc).toBe(0);
    const { accessFd } = createAccess(proc, fd, src, NEEDS_PIN);
    const pinned = accessPages(proc, fd, accessFd, srcMap.iova, BUFFER, buffer);
    expect(pinned.rc).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    // The copy maps the already pinned pages into the domain without pinning again.
    expect(copy(proc, fd, ioas, src, srcMap.iova, BUFFER, APERTURE).rc).toBe(0);
    expect(checkMap(proc, fd, hwpt, APERTURE, BUFFER, buffer)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);

    // 12: the IOAS cannot go while the access is attached.
    expect(destroy(proc, fd, src)).toBe(-EBUSY);
    const next = ioasAlloc(proc, fd);
    const nextMap = map(proc, fd, next, buffer, BUFFER);
    expect(nextMap.rc).toBe(0);
    expect(accessReplaceIoas(proc, fd, accessFd, next)).toBe(0);
    // Replacing unpinned every item of the access.
    expect(destroyAccessPages(proc, fd, accessFd, pinned.item)).toBe(-ENOENT);
    expect(unmap(proc, fd, ioas, APERTURE, BUFFER).rc).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    expect(destroy(proc, fd, src)).toBe(0);
    expect(objectsOf(proc, fd)).not.toContain(`${src}:IOAS`);

    // The same again from the new IOAS.
    const again = accessPages(proc, fd, accessFd, nextMap.iova, BUFFER, buffer);
    expect(again.rc).toBe(0);
    expect(copy(proc, fd, ioas, next, nextMap.iova, BUFFER, APERTURE).rc).toBe(0);
    expect(checkMap(proc, fd, hwpt, APERTURE, BUFFER, buffer)).toBe(0);
    expect(destroyAccessPages(proc, fd, accessFd, again.item)).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    expect(destroy(proc, fd, next)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('214: an access pin inside a 2·HPAGE mapping survives destroying the domain; destroying the item then works', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const size = 4n << 20n;
    const big = filledBuffer(proc, Number(size), 5);
    expect(map(proc, fd, ioas, big, size, APERTURE).rc).toBe(0);
    const { accessFd } = createAccess(proc, fd, ioas, NEEDS_PIN);
    const pinned = accessPages(proc, fd, accessFd, APERTURE + PAGE, PAGE, big + PAGE);
    expect(pinned.rc).toBe(0);
    expect(checkRefs(proc, fd, big, size, 1)).toBe(0);
    // Destroying the only domain unpins the area but not the access's page.
    expect(destroy(proc, fd, md?.stdevId ?? 0)).toBe(0);
    expect(checkRefs(proc, fd, big, PAGE, 0)).toBe(0);
    expect(checkRefs(proc, fd, big + PAGE, PAGE, 1)).toBe(0);
    expect(checkRefs(proc, fd, big + 2n * PAGE, size - 2n * PAGE, 0)).toBe(0);
    expect(host.pinnedPages()).toBe(1);
    expect(destroyAccessPages(proc, fd, accessFd, pinned.item)).toBe(0);
    expect(checkRefs(proc, fd, big, size, 0)).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    expect(proc.munmap(big, size)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('215: an access with NEEDS_PIN_PAGES raises the IOAS alignment to PAGE_SIZE, and it drops back when the access goes', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(1n);
    const plain = createAccess(proc, fd, ioas, 0);
    expect(plain.rc).toBe(0);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(1n);
    const pin = createAccess(proc, fd, ioas, NEEDS_PIN);
    expect(pin.rc).toBe(0);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(PAGE);
    expect(map(proc, fd, ioas, buffer, 2048n).rc).toBe(-EINVAL);
    expect(map(proc, fd, ioas, buffer, PAGE, PAGE / 2n).rc).toBe(-EINVAL);
    expect(proc.close(pin.accessFd)).toBe(0);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(1n);
    // Now a 2048-byte area at a 2048 offset is fine, and it blocks a new pinning access.
    expect(map(proc, fd, ioas, buffer, 2048n, 2048n).rc).toBe(0);
    const files = proc.openFiles().length;
    const objects = objectsOf(proc, fd);
    expect(createAccess(proc, fd, ioas, NEEDS_PIN).rc).toBe(-EADDRINUSE);
    expect(proc.openFiles().length).toBe(files);
    expect(objectsOf(proc, fd)).toEqual(objects);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(1n);
    expect(proc.close(plain.accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });
});

describe('section 3: the access test ops', () => {
  it('CREATE_ACCESS: unknown flags → EOPNOTSUPP, unknown IOAS → ENOENT; success returns an fd and an ACCESS object; close destroys it', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    const before = proc.openFiles().length;
    expect(createAccess(proc, fd, ioas, 2).rc).toBe(-EOPNOTSUPP);
    expect(createAccess(proc, fd, ioas, 0x80000000).rc).toBe(-EOPNOTSUPP);
    expect(createAccess(proc, fd, ioas + 99, 0).rc).toBe(-ENOENT);
    expect(createAccess(proc, fd, 0, NEEDS_PIN).rc).toBe(-ENOENT);
    expect(proc.openFiles().length).toBe(before);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`]);

    const made = createAccess(proc, fd, ioas, NEEDS_PIN);
    expect(made.rc).toBe(0);
    expect(made.accessFd).toBeGreaterThan(fd);
    expect(proc.openFiles()).toContainEqual({ fd: made.accessFd, kind: 'access' });
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`, `${ioas + 1}:ACCESS`]);
    // The attached access holds the IOAS.
    expect(destroy(proc, fd, ioas)).toBe(-EBUSY);
    // close() unpins everything the access held and destroys it.
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    expect(accessPages(proc, fd, made.accessFd, APERTURE, BUFFER, buffer).rc).toBe(0);
    expect(host.pinnedPages()).toBe(BUFFER_PAGES);
    expect(proc.close(made.accessFd)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`]);
    expect(destroy(proc, fd, ioas)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('DESTROY_ACCESS_PAGES / ACCESS_PAGES / ACCESS_RW on an fd that is not an access fd → EBADFD', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const other = proc.open('/dev/iommu');
    for (const notAccess of [fd, other, 999]) {
      expect(destroyAccessPages(proc, fd, notAccess, 0)).toBe(-EBADFD);
      expect(accessPages(proc, fd, notAccess, APERTURE, PAGE, buffer).rc).toBe(-EBADFD);
      expect(accessRw(proc, fd, notAccess, APERTURE, 8n, buffer)).toBe(-EBADFD);
    }
    expect(errnoOf(proc)).toBe('EBADFD');
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    expect(proc.close(other)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('ACCESS_PAGES errors: >16 MiB → ENOMEM, unknown flags → EOPNOTSUPP, wrong uptr → EBADE, misaligned → EINVAL, hole → ENOENT, write to read-only → EPERM; none leaves a pin', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    const other = filledBuffer(proc, Number(BUFFER), 9);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const roIova = APERTURE + 2n * BUFFER;
    expect(map(proc, fd, ioas, other, BUFFER, roIova, IOMMU_IOAS_MAP_READABLE).rc).toBe(0);
    const { accessFd } = createAccess(proc, fd, ioas, NEEDS_PIN);
    const plain = createAccess(proc, fd, ioas, 0);

    // The size guard comes first, before the flags and even before the fd.
    const huge = (16n << 20n) + 1n;
    expect(accessPages(proc, fd, accessFd, APERTURE, huge, buffer).rc).toBe(-ENOMEM);
    expect(accessPages(proc, fd, plain.accessFd, APERTURE, huge, 0n).rc).toBe(-ENOMEM);
    expect(accessPages(proc, fd, accessFd, APERTURE, huge, 0n, 0x40).rc).toBe(-ENOMEM);
    expect(accessPages(proc, fd, 999, APERTURE, huge, 0n).rc).toBe(-ENOMEM);
    expect(accessPages(proc, fd, accessFd, APERTURE, PAGE, buffer, 0x40).rc).toBe(-EOPNOTSUPP);
    // The pinned pages are not the user's pages at uptr.
    expect(accessPages(proc, fd, accessFd, APERTURE, PAGE, other).rc).toBe(-EBADE);
    expect(accessPages(proc, fd, accessFd, APERTURE, 2n * PAGE, buffer + PAGE).rc).toBe(-EBADE);
    expect(errnoOf(proc)).toBe('EBADE');
    // A start that is not on a page boundary of the area.
    expect(accessPages(proc, fd, accessFd, APERTURE + 8n, PAGE, 0n).rc).toBe(-EINVAL);
    // Not covered: past the area's end, and in the hole before the read-only area.
    expect(accessPages(proc, fd, accessFd, APERTURE + BUFFER - PAGE, 2n * PAGE, 0n).rc).toBe(
      -ENOENT,
    );
    expect(accessPages(proc, fd, accessFd, APERTURE + BUFFER, PAGE, 0n).rc).toBe(-ENOENT);
    // Write access on a read-only area; read access is fine.
    expect(accessPages(proc, fd, accessFd, roIova, PAGE, other, MOCK_FLAGS_ACCESS_WRITE).rc).toBe(
      -EPERM,
    );
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    expect(checkRefs(proc, fd, other, BUFFER, 0)).toBe(0);
    expect(host.pinnedPages()).toBe(0);

    // Failed pins took no item id: the first success is item 0.
    const ok = accessPages(proc, fd, accessFd, roIova, PAGE, other);
    expect(ok).toEqual({ rc: 0, item: 0 });
    const rw = accessPages(proc, fd, accessFd, APERTURE, BUFFER, buffer, MOCK_FLAGS_ACCESS_WRITE);
    expect(rw).toEqual({ rc: 0, item: 1 });
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    expect(checkRefs(proc, fd, other, PAGE, 1)).toBe(0);
    expect(proc.close(plain.accessFd)).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('ACCESS_RW errors: >16 MiB → ENOMEM, unknown flags → EOPNOTSUPP, unmapped IOVA → ENOENT, write to read-only → EPERM, bad user buffer → EFAULT; memory unchanged', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    const original = proc.readMemory(buffer, Number(BUFFER)) as Uint8Array;
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE, IOMMU_IOAS_MAP_READABLE).rc).toBe(0);
    const { accessFd } = createAccess(proc, fd, ioas, 0);
    const tmp = filledBuffer(proc, Number(PAGE), 11);
    const huge = (16n << 20n) + 1n;
    expect(accessRw(proc, fd, accessFd, APERTURE, huge, tmp)).toBe(-ENOMEM);
    expect(accessRw(proc, fd, 999, APERTURE, huge, tmp)).toBe(-ENOMEM);
    expect(accessRw(proc, fd, accessFd, APERTURE, 8n, tmp, 2)).toBe(-EOPNOTSUPP);
    expect(accessRw(proc, fd, accessFd, APERTURE + BUFFER - 4n, 8n, tmp)).toBe(-ENOENT);
    expect(accessRw(proc, fd, accessFd, APERTURE, 8n, tmp, MOCK_ACCESS_RW_WRITE)).toBe(-EPERM);
    // The kernel reads the user buffer before touching the IOAS (write), and writes it after (read).
    expect(accessRw(proc, fd, accessFd, APERTURE, 8n, 0x10n, MOCK_ACCESS_RW_WRITE)).toBe(-EFAULT);
    expect(accessRw(proc, fd, accessFd, APERTURE, 8n, 0x10n)).toBe(-EFAULT);
    expect(firstDifference(proc.readMemory(buffer, Number(BUFFER)), original)).toBe('');
    // A read through the read-only area works.
    expect(accessRw(proc, fd, accessFd, APERTURE + 100n, 8n, tmp)).toBe(0);
    expect(proc.readMemory(tmp, 8)).toEqual(original.subarray(100, 108));
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });
});

describe('ACCESS_REPLACE_IOAS', () => {
  it('to an unknown IOAS → ENOENT and the access stays where it was; to the same IOAS → 0', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const { accessFd } = createAccess(proc, fd, ioas, NEEDS_PIN);
    const pinned = accessPages(proc, fd, accessFd, APERTURE, PAGE, buffer);
    expect(accessReplaceIoas(proc, fd, accessFd, 77)).toBe(-ENOENT);
    expect(accessReplaceIoas(proc, fd, 999, ioas)).toBe(-EBADFD);
    expect(destroy(proc, fd, ioas)).toBe(-EBUSY);
    expect(accessReplaceIoas(proc, fd, accessFd, ioas)).toBe(0);
    expect(checkRefs(proc, fd, buffer, PAGE, 1)).toBe(0);
    expect(destroyAccessPages(proc, fd, accessFd, pinned.item)).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });
});
