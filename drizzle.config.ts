import { defineConfig } from 'drizzle-kit';

// Generates migrations/ from the tables beside their features. Never edit a landed migration.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/**/*.sql.ts',
  out: './migrations',
  casing: 'snake_case',
});
