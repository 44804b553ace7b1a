/** A C enum (or a family of `#define`d flags) of the uAPI. */
export interface EnumInfo {
  /** The C tag, or a descriptive name for an anonymous enum. */
  readonly name: string;
  /** The header that declares it. */
  readonly header: string;
  /** `flags` when its constants are bits that combine, `values` when they are alternatives. */
  readonly kind: 'values' | 'flags';
  /** Its constants by kernel name. */
  readonly constants: Readonly<Record<string, number>>;
}

/** Declares an enum of the uAPI. */
export function defineEnum(
  name: string,
  header: string,
  kind: EnumInfo['kind'],
  constants: Record<string, number>,
): EnumInfo {
  return Object.freeze({ name, header, kind, constants: Object.freeze(constants) });
}
