// Typed access to the two ABI fixture files (copied from the compiler dump).
import { readFileSync } from 'node:fs';

function load(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));
}

export interface AbiField {
  name: string;
  type?: string;
  kind?: string;
  offset: number;
  size: number;
  members?: { name: string; offset: number; size: number }[];
}

export interface AbiStruct {
  sizeof: number;
  alignof: number;
  header: string;
  fields: AbiField[];
  flat_fields: { path: string; offset: number; size: number }[];
  pointees?: Record<
    string,
    {
      elem_size: number;
      element_fields: { path: string; offset_in_element: number; size: number }[];
    }
  >;
}

export interface AbiIoctl {
  request: number;
  ioc_type: number;
  ioc_nr: number;
  ioc_dir: number;
  ioc_size: number;
  struct: string;
  struct_sizeof: number;
  min_size: number;
  min_size_field: string;
  min_size_when_flag?: Record<string, { field: string; min_size: number }>;
}

export interface AbiConstant {
  name: string;
  value: number;
}

export interface Abi {
  structs: Record<string, AbiStruct>;
  ioctls: Record<string, AbiIoctl>;
  enums: { name: string; constants: AbiConstant[] }[];
  defines: (AbiConstant & { header: string })[];
}

export interface TestAbiField {
  name: string;
  kind: 'scalar' | 'struct' | 'union';
  type: string;
  offset: number;
  size: number;
  align: number;
  parent: string | null;
}

export interface TestAbi {
  structs: {
    name: string;
    sizeof: number;
    alignof: number;
    offsetofend_last_member: number;
    fields: TestAbiField[];
  }[];
  enums: { constants: { name: string; value: number }[] }[];
  defines: { name: string; value: number }[];
  dependencies_from_uapi_iommufd_h: { name: string; value: number }[];
  ioctl_decode: Record<string, { value: number; dir: number; type: number; nr: number }>;
  kernel_dispatch: { min_size: number; full_size: number };
  op_semantics_hand_derived_from_selftest_c: {
    op: string;
    value: number;
    payload_member: string;
    inputs: string[];
    outputs_written_back: string[];
  }[];
}

export const abi = load('iommufd-abi.json') as Abi;
export const testAbi = load('iommufd-test-abi.json') as TestAbi;
