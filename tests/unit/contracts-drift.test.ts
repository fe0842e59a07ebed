import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contractsDir, generate, GENERATED_FILE } from '../../contracts/codegen.js';

describe('contracts', () => {
  it('catalogue.generated.ts matches the .avsc files (run `npm run contracts` after changing a schema)', () => {
    const root = contractsDir();
    expect(readFileSync(join(root, GENERATED_FILE), 'utf8')).toBe(generate(root));
  });
});
