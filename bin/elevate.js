#!/usr/bin/env node
// The `elevate` command. Node runs the TypeScript sources directly: type stripping is on by
// default from Node 22.18; on 22.12–22.17 this restarts once with the flag that turns it on.
import { spawn } from 'node:child_process';

if (process.features.typescript) {
  const { run } = await import('../src/cli/main.ts');
  await run(process.argv.slice(2));
} else {
  const child = spawn(
    process.execPath,
    [
      // The flags this process was given (npm start's V8 flags) go to the real process too.
      ...process.execArgv,
      '--experimental-strip-types',
      '--disable-warning=ExperimentalWarning',
      import.meta.filename,
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit' },
  );
  // The child is the real process: pass signals on (graceful shutdown) and exit with its code.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
