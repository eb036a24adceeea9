import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, test } from 'vitest';

const SRC = new URL('../../src', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Value imports (type-only imports erase at run time and may point anywhere inward). */
function valueImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1] ?? '');
}

test('the core imports no chat SDK, no surface, no loop and no concrete provider', () => {
  const offences: string[] = [];
  for (const file of sourceFiles(join(SRC, 'elevation'))) {
    for (const spec of valueImports(file)) {
      const outward =
        /^@slack\/|^@microsoft\//.test(spec) ||
        /\/(chat|jobs|http|cli|policy)\//.test(spec) ||
        (/\/grants\//.test(spec) && !spec.endsWith('/grants/grant-provider.ts'));
      if (outward) offences.push(`${relative(SRC, file)} imports ${spec}`);
    }
  }
  expect(offences).toEqual([]);
});

test('drizzle-orm is loaded only through src/db/drizzle.ts (its CommonJS build; see there why)', () => {
  const offences: string[] = [];
  for (const file of sourceFiles(SRC).filter((f) => !f.endsWith('/db/drizzle.ts'))) {
    const text = readFileSync(file, 'utf8');
    const dynamic = [...text.matchAll(/(?<!typeof\s+)import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? '');
    for (const spec of [...valueImports(file), ...dynamic]) {
      if (/^drizzle-orm(\/|$)/.test(spec)) offences.push(`${relative(SRC, file)} imports ${spec}`);
    }
  }
  expect(offences).toEqual([]);
});
