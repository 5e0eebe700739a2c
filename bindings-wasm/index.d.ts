// Types of concord-kv. Keys and values accept strings (UTF-8) or bytes;
// answers carry both. Revisions are numbers; 64-bit IDs (leases, members)
// are decimal strings.

export type Bytes = string | Uint8Array;

export interface ConnectOptions {
  /** Members' client URLs (`http://host:port`, or `host:port`). Default: `http://127.0.0.1:2379`. */
  endpoints?: string[];
  user?: string;
  password?: string;
  /** Deadline of each call, retries included, in milliseconds. */
  timeoutMs?: number;
}

export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
  keyString: string;
  valueString: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** "0": no lease. */
  lease: string;
}

export interface KeyRangeOptions {
  /** Every key starting with the key. */
  prefix?: boolean;
  /** Every key from the key on. */
  fromKey?: boolean;
  /** Keys in `[key, rangeEnd)`. */
  rangeEnd?: Bytes;
}

export type SortTarget = 'key' | 'version' | 'createRevision' | 'modRevision' | 'value';

export interface GetOptions extends KeyRangeOptions {
  revision?: number;
  serializable?: boolean;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  sort?: { target?: SortTarget; order?: 'ascend' | 'descend' };
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface PutOptions {
  lease?: string | bigint | number | Lease;
  prevKv?: boolean;
}

export interface DeleteOptions extends KeyRangeOptions {
  prevKv?: boolean;
}

export interface PutResult {
  revision: number;
  prevKv?: KeyValue;
}

export interface RangeResult {
  kvs: KeyValue[];
  count: number;
  more: boolean;
  revision: number;
}

export interface DeleteResult {
  deleted: number;
  revision: number;
  prevKvs: KeyValue[];
}

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';

export interface Compare extends KeyRangeOptions {
  key: Bytes;
  /** Default `value`. */
  target?: CompareTarget;
  /** Default `==`. */
  result?: '==' | '!=' | '<' | '>';
  /** Bytes for `value`, a lease ID for `lease`, a number otherwise. */
  value: Bytes | number | bigint;
}

export type TxnOp =
  | ({ put: Bytes; value: Bytes } & PutOptions)
  | ({ get: Bytes } & GetOptions)
  | ({ delete: Bytes } & DeleteOptions)
  | { txn: TxnSpec };

export interface TxnSpec {
  compare?: Compare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

export type TxnResponse =
  | ({ type: 'put' } & PutResult)
  | ({ type: 'get' } & RangeResult)
  | ({ type: 'delete' } & DeleteResult)
  | ({ type: 'txn' } & TxnResult);

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  responses: TxnResponse[];
}

export interface WatchOptions extends KeyRangeOptions {
  /** Deliver events from this revision on (history first). */
  startRevision?: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
  progressNotify?: boolean;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface WatchResponse {
  revision: number;
  events: WatchEvent[];
}

export declare class Watch implements AsyncIterableIterator<WatchEvent> {
  /** The revision of the last response received. */
  revision: number;
  /** The next response, or null once canceled. */
  nextResponse(): Promise<WatchResponse | null>;
  next(): Promise<IteratorResult<WatchEvent, undefined>>;
  return(): Promise<IteratorResult<WatchEvent, undefined>>;
  [Symbol.asyncIterator](): Watch;
  cancel(): void;
}

export interface LeaseTimeToLive {
  /** Seconds left; -1 when the lease does not exist. */
  ttl: number;
  grantedTtl: number;
  keys: Uint8Array[];
}

export declare class Lease {
  readonly id: string;
  /** Resolves with the error once a kept-alive lease is lost (null if released first). */
  readonly lost: Promise<ConcordError | null>;
  timeToLive(): Promise<LeaseTimeToLive>;
  revoke(): Promise<void>;
  release(): void;
}

export interface Lock {
  key: Uint8Array;
  /** The fencing token: writes guarded by it cannot overtake a later holder's. */
  revision: number;
  lease: Lease;
  lost: Promise<ConcordError | null>;
}

export interface Leadership {
  name: Uint8Array;
  key: Uint8Array;
  rev: number;
  lease: string;
}

export interface Observation extends AsyncIterableIterator<KeyValue> {
  cancel(): void;
}

export declare class Election {
  readonly name: Bytes;
  campaign(value: Bytes, opts?: { ttl?: number }): Promise<Leadership>;
  proclaim(value: Bytes): Promise<void>;
  resign(): Promise<void>;
  leader(): Promise<KeyValue | null>;
  observe(): Observation;
}

export interface Status {
  version: string;
  dbSize: number;
  dbSizeInUse: number;
  leader: string;
  memberId: string;
  clusterId: string;
  revision: number;
  raftIndex: number;
  raftTerm: number;
  isLearner: boolean;
}

export interface Member {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export declare class Client {
  static connect(opts?: ConnectOptions): Promise<Client>;
  put(key: Bytes, value: Bytes, opts?: PutOptions): Promise<PutResult>;
  get(key: Bytes, opts?: GetOptions): Promise<KeyValue | null>;
  getPrefix(prefix: Bytes, opts?: GetOptions): Promise<KeyValue[]>;
  getRange(start: Bytes, end: Bytes, opts?: GetOptions): Promise<KeyValue[]>;
  range(key: Bytes, opts?: GetOptions): Promise<RangeResult>;
  delete(key: Bytes, opts?: DeleteOptions): Promise<DeleteResult>;
  deletePrefix(prefix: Bytes, opts?: DeleteOptions): Promise<DeleteResult>;
  txn(spec: TxnSpec): Promise<TxnResult>;
  watch(key: Bytes, opts?: WatchOptions): Promise<Watch>;
  lease(ttl: number, opts?: { keepAlive?: boolean; id?: string | bigint | number }): Promise<Lease>;
  /** The IDs of every lease on the cluster. */
  leases(): Promise<string[]>;
  /** Any lease by ID; `ttl` is -1 when it does not exist. */
  leaseTimeToLive(id: string | bigint | number | Lease): Promise<LeaseTimeToLive>;
  /** Revokes any lease by ID (its keys are deleted). */
  revokeLease(id: string | bigint | number | Lease): Promise<void>;
  lock<T>(name: Bytes, fn: (lock: Lock) => Promise<T> | T, opts?: { ttl?: number; timeoutMs?: number }): Promise<T>;
  election(name: Bytes): Election;
  status(): Promise<Status>;
  members(): Promise<Member[]>;
}

export declare class ConcordError extends Error {
  /** etcd's gRPC status code. */
  readonly code: number;
  /** The client's kind of error (`Compacted`, `Timeout`, …). */
  readonly kind: string;
  /** For a watch that started at a compacted revision. */
  readonly compactRevision?: number;
}
export declare class CompactedError extends ConcordError {}
export declare class FutureRevisionError extends ConcordError {}
export declare class LeaseNotFoundError extends ConcordError {}
export declare class PermissionDeniedError extends ConcordError {}
export declare class AuthenticationFailedError extends ConcordError {}
export declare class InvalidTokenError extends ConcordError {}
export declare class TooManyRequestsError extends ConcordError {}
export declare class TimeoutError extends ConcordError {}
export declare class UnavailableError extends ConcordError {}
export declare class InvalidArgumentError extends ConcordError {}
export declare class WatchCanceledError extends ConcordError {}
/**
 * Rust code inside the module panicked (code 13, kind `Panic`). Only the
 * calls in flight fail: the module is rebuilt, clients connect again on
 * their next call, watches resume after the last event they delivered, and
 * kept-alive leases are kept alive anew.
 */
export declare class PanicError extends ConcordError {}

/** The end of the range of keys starting with `key`. */
export declare function prefixEnd(key: Bytes): Uint8Array;
