/**
 * avsc type construction with Relaygrid's two value conventions:
 * - `long` is a JavaScript bigint, so 64-bit byte counters never lose precision
 *   (avsc's default maps long to number and throws past 2^53);
 * - `timestamp-millis` is a Date.
 */
import avro from 'avsc';
import type { Schema, Type } from 'avsc';

const BigIntLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (json: unknown) => BigInt(json as string | number),
  toJSON: (n: bigint) => n.toString(),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** Its underlying long is avsc's plain (number) long: milliseconds since 1970 fit a double exactly. */
class TimestampMillis extends avro.types.LogicalType {
  protected override _fromValue(value: number | bigint): Date {
    return new Date(Number(value));
  }

  protected override _toValue(date: unknown): number | undefined {
    return date instanceof Date && !Number.isNaN(date.getTime()) ? date.getTime() : undefined;
  }

  protected override _resolve(type: Type): ((value: bigint | number) => Date) | undefined {
    if (avro.Type.isType(type, 'long', 'logical:timestamp-millis')) return (v) => this._fromValue(v);
    return undefined;
  }
}

/** Builds an avsc Type. Each call gets its own registry: schemas of different versions share record names. */
export function avroType(schema: Schema): Type {
  return avro.Type.forSchema(schema, {
    registry: { long: BigIntLong },
    logicalTypes: { 'timestamp-millis': TimestampMillis },
    wrapUnions: 'auto',
    // `{"type": "long"}` written as an object bypasses the registry; route it to the bigint long too.
    typeHook: (s) => {
      const obj = s as unknown as Record<string, unknown>;
      return typeof s === 'object' && !Array.isArray(s) && obj['type'] === 'long' && !('logicalType' in obj) ? BigIntLong : undefined;
    },
  });
}
