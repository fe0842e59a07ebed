/**
 * What each export dataset holds: its read model, the column that places a
 * row in the range, whose rows they are, and its columns with their types
 * (for the Avro schema; CSV and NDJSON write the same columns in the same
 * order). Columns marked `personal` are written only when the rows are the
 * caller's own: the client IP of a connection (opened with the person's key),
 * the tax country of an invoice or order.
 */
import type { Schema } from 'avsc';

export const DATASETS = ['usage', 'connections', 'invoices', 'orders'] as const;
export type Dataset = (typeof DATASETS)[number];
export const EXPORT_FORMATS = ['csv', 'ndjson', 'avro'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export type ColumnKind = 'string' | 'long' | 'int' | 'time';

export interface Column {
  name: string;
  kind: ColumnKind;
  nullable?: boolean;
  personal?: boolean;
}

export interface DatasetSpec {
  table: 'analytics_usage_hourly' | 'connection_history' | 'invoices' | 'orders';
  time: string;
  owner: string;
  /** Row order of the export: an index's order, so the cursor streams without sorting the whole range. */
  order: string[];
  columns: Column[];
}

const s = (name: string, more: Partial<Column> = {}): Column => ({ name, kind: 'string', ...more });
const long = (name: string): Column => ({ name, kind: 'long' });
const time = (name: string, nullable = false): Column => ({ name, kind: 'time', nullable });
const money = ['subtotal_minor', 'tax_minor', 'total_minor'].map(long);

export const DATASET_SPECS: Record<Dataset, DatasetSpec> = {
  usage: {
    table: 'analytics_usage_hourly',
    time: 'hour',
    owner: 'user_id',
    order: ['user_id', 'hour', 'node_id'],
    columns: [s('user_id'), time('hour'), s('node_id'), long('uplink'), long('downlink')],
  },
  connections: {
    table: 'connection_history',
    time: 'opened_at',
    owner: 'user_id',
    order: ['user_id', 'opened_at', 'connection_id'],
    columns: [s('connection_id'), s('user_id'), s('node_id'), s('inbound_tag', { nullable: true }), { name: 'port', kind: 'int', nullable: true }, time('opened_at'), time('closed_at', true), long('uplink'), long('downlink'), s('client_ip', { nullable: true, personal: true })],
  },
  invoices: {
    table: 'invoices',
    time: 'created_at',
    owner: 'user_id',
    order: ['user_id', 'created_at', 'id'],
    columns: [s('id'), s('number', { nullable: true }), s('user_id'), s('order_id'), s('status'), s('currency'), ...money, long('credited_minor'), time('period_start'), time('period_end'), time('created_at'), time('finalized_at', true), time('paid_at', true), s('tax_country', { nullable: true, personal: true })],
  },
  orders: {
    table: 'orders',
    time: 'placed_at',
    owner: 'user_id',
    order: ['user_id', 'placed_at', 'id'],
    columns: [s('id'), s('user_id'), s('kind'), s('plan_id'), { name: 'months', kind: 'int' }, s('currency'), ...money, long('refunded_minor'), s('status'), s('provider'), time('placed_at'), time('paid_at', true), s('tax_country', { nullable: true, personal: true })],
  },
};

export const columnsOf = (dataset: Dataset, personal: boolean): Column[] => DATASET_SPECS[dataset].columns.filter((c) => personal || !c.personal);

const AVRO: Record<ColumnKind, Schema> = { string: 'string', long: 'long', int: 'int', time: { type: 'long', logicalType: 'timestamp-millis' } };

/** One record per row: `relaygrid.analytics.<Dataset>Row`. */
export function avroSchemaOf(dataset: Dataset, personal: boolean): Schema {
  const name = `${dataset[0]?.toUpperCase() ?? ''}${dataset.slice(1)}Row`;
  return {
    type: 'record',
    name,
    namespace: 'relaygrid.analytics',
    fields: columnsOf(dataset, personal).map((c) => ({ name: c.name, type: c.nullable ? ['null', AVRO[c.kind]] : AVRO[c.kind], ...(c.nullable ? { default: null } : {}) })),
  } as Schema;
}
