/**
 * One lookup for every request an fd of the model answers: iommufd and VFIO
 * cdev ioctls (a struct argument), and the legacy VFIO container ioctls an
 * iommufd fd emulates (no argument, an integer, or a struct).
 */
import {
  ioctlByRequest,
  ioctls,
  type StructName,
  vfioContainerIoctlByRequest,
  vfioContainerIoctls,
} from '@iommufd-sim/uapi-types';

/** What the tracer and the scenario runner need to know about a request. */
export interface RequestInfo {
  readonly name: string;
  readonly request: number;
  /** 'struct': a pointer to {@link struct}; 'integer': a number; 'none': nothing. */
  readonly argument: 'struct' | 'integer' | 'none';
  readonly struct?: StructName;
  /** The struct's size in 6.17 (0 without one). */
  readonly size: number;
  /** The struct's size field: `size` (iommufd) or `argsz` (VFIO). */
  readonly sizeField?: 'size' | 'argsz';
}

function sizeFieldOf(struct: StructName): 'size' | 'argsz' {
  return struct.startsWith('vfio_') ? 'argsz' : 'size';
}

/** The request with this number, or undefined. */
export function requestByNumber(request: number): RequestInfo | undefined {
  const io = ioctlByRequest(request);
  if (io !== undefined) {
    return {
      name: io.name,
      request,
      argument: 'struct',
      struct: io.struct,
      size: io.size,
      sizeField: sizeFieldOf(io.struct),
    };
  }
  const vc = vfioContainerIoctlByRequest(request);
  if (vc === undefined) return undefined;
  if (vc.struct === undefined) return { name: vc.name, request, argument: vc.argument, size: 0 };
  return {
    name: vc.name,
    request,
    argument: vc.argument,
    struct: vc.struct,
    size: vc.minSize,
    sizeField: 'argsz',
  };
}

/** The request with this macro name, or undefined. */
export function requestByName(name: string): RequestInfo | undefined {
  const table: Readonly<Record<string, { readonly request: number }>> = {
    ...ioctls,
    ...vfioContainerIoctls,
  };
  const io = Object.hasOwn(table, name) ? table[name] : undefined;
  return io === undefined ? undefined : requestByNumber(io.request);
}

/** Every request name, for messages. */
export function requestNames(): string[] {
  return [...Object.keys(ioctls), ...Object.keys(vfioContainerIoctls)];
}
