/**
 * The Postgres read models and the projector bookkeeping, as Kysely types.
 * Columns are described here once; migrations.ts creates them.
 */
import type { ColumnType, Generated } from 'kysely';

export interface ProjectorCheckpointTable {
  projector: string;
  stream: string;
  /** Last stream sequence applied: everything up to and including it is in the read model. */
  seq: number;
  event_id: string | null;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface ProjectorFailureTable {
  id: Generated<number>;
  projector: string;
  stream: string;
  seq: number;
  event_id: string | null;
  event_type: string | null;
  error: string;
  failed_at: ColumnType<Date, Date | string | undefined, never>;
  resolved_at: Date | null;
  resolution: string | null;
}

export interface UserTable {
  id: string;
  email: string;
  display_name: string | null;
  status: string;
  registered_at: Date;
  /** Stream sequence of the last event folded into this row. */
  last_seq: number;
}

export interface Database {
  projector_checkpoints: ProjectorCheckpointTable;
  projector_failures: ProjectorFailureTable;
  users: UserTable;
}
