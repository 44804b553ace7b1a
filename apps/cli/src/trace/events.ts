/**
 * The trace: one JSON object per line. The first line says which host the
 * run had; then every process, every system call with its arguments and its
 * answer (ioctl argument bytes in and out, memory written and read, fault
 * records read, responses written), every device DMA and every step marker.
 * That is enough to replay the run on a fresh host and compare each answer.
 * u64 values are `0x` hex strings and bytes are hex strings.
 */
import type { HostConfig } from '@iommufd-sim/iommufd-core';

/** The trace format's name and version, in the first line. */
export const TRACE_FORMAT = 'iommufd-sim-trace';
/** Bumped when a field changes meaning. */
export const TRACE_VERSION = 1;

/** A failing call's errno name and the reason the model recorded. */
export interface Failure {
  readonly errno?: string;
  readonly reason?: string;
}

/** A DMA transfer that finished while a call ran (a fault answered, a detach). */
export interface CompletedDma {
  readonly id: number;
  readonly device: string;
  /** 'done', 'fault' or 'aborted'. */
  readonly state: string;
  readonly bytes: number;
}

interface Common {
  /** The step that made the call (1-based), absent outside steps. */
  step?: number;
  /** Transfers that completed during the call. */
  completed?: CompletedDma[];
}

/** First line: the host and the scenario. */
export interface TraceHeader {
  readonly op: 'trace';
  readonly format: typeof TRACE_FORMAT;
  readonly version: number;
  readonly scenario: string;
  readonly host: HostConfig;
}

/** Every line after the first. */
export type TraceEvent = Common &
  (
    | {
        readonly op: 'process';
        readonly pid: number;
        readonly name: string;
        readonly options: {
          readonly memlockLimitBytes: string;
          readonly privileged: boolean;
          readonly ipcLock: boolean;
          readonly uid: number;
        };
      }
    | { readonly op: 'step'; readonly title: string; readonly kind: string; readonly line: number }
    | ({
        readonly op: 'mmap';
        readonly pid: number;
        readonly length: string;
        readonly fd?: number;
        readonly offset?: string;
        readonly readOnly?: boolean;
        readonly ret: string;
      } & Failure)
    | ({
        readonly op: 'munmap';
        readonly pid: number;
        readonly va: string;
        readonly length: string;
        readonly ret: number;
      } & Failure)
    | ({
        readonly op: 'memfd';
        readonly pid: number;
        readonly name: string;
        readonly size: string;
        readonly ret: number;
      } & Failure)
    | ({
        readonly op: 'write-memory';
        readonly pid: number;
        readonly va: string;
        readonly data: string;
        readonly ret: number;
      } & Failure)
    | {
        readonly op: 'read-memory';
        readonly pid: number;
        readonly va: string;
        readonly length: number;
        readonly ret: string | null;
      }
    | ({
        readonly op: 'open';
        readonly pid: number;
        readonly path: string;
        readonly ret: number;
      } & Failure)
    | ({
        readonly op: 'close';
        readonly pid: number;
        readonly fd: number;
        readonly ret: number;
      } & Failure)
    | ({
        readonly op: 'ioctl';
        readonly pid: number;
        readonly fd: number;
        readonly request: number;
        readonly name: string;
        /** The argument's bytes before the call (a struct argument). */
        readonly arg?: string;
        /** An integer argument (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU). */
        readonly int?: string;
        /** The argument's bytes after the call. */
        readonly out?: string;
        readonly ret: number;
      } & Failure)
    | ({
        readonly op: 'read';
        readonly pid: number;
        readonly fd: number;
        readonly count: number;
        /** The bytes read (up to ret). */
        readonly data?: string;
        readonly ret: number;
      } & Failure)
    | ({
        readonly op: 'write';
        readonly pid: number;
        readonly fd: number;
        readonly data: string;
        readonly ret: number;
      } & Failure)
    | { readonly op: 'poll'; readonly pid: number; readonly fd: number; readonly ret: number }
    | {
        readonly op: 'dma';
        readonly device: string;
        readonly iova: string;
        readonly pasid?: number;
        /** Bytes written (a write). */
        readonly data?: string;
        /** Bytes to read (a read). */
        readonly length?: number;
        /** 'done', 'page-request', 'fault', or 'none' for an unknown device. */
        readonly status: string;
        readonly bytes: number;
        /** Bytes read so far (a read). */
        readonly read?: string;
        /** The hardware's name for the fault, when there was one. */
        readonly fault?: string;
      }
    | { readonly op: 'exit'; readonly pid: number }
  );

/** The op names of {@link TraceEvent}. */
export type TraceOp = TraceEvent['op'];

/** A whole trace: its header and its events. */
export interface Trace {
  readonly header: TraceHeader;
  readonly events: readonly TraceEvent[];
}

/** The trace as JSON lines (header first), each ending in a newline. */
export function traceToJsonl(trace: Trace): string {
  return [trace.header, ...trace.events].map((e) => `${JSON.stringify(e)}\n`).join('');
}
