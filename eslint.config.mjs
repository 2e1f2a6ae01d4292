// Lint: typescript-eslint everywhere; in workflows/ a determinism guard as in
// temporalio/samples-typescript: no Node built-ins, no non-deterministic
// globals, and floating promises are errors (a forgotten await in a workflow
// reorders commands and breaks replay).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', 'test/fixtures/lint-bad/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Product code throws the registry's errors (lib/errors.ts): a code the client, tests and docs can rely on.
    // A plain Error is allowed where it never leaves its module (wrapped by the caller into a registry error,
    // or a socket's destroy reason), each with an eslint-disable comment that says so.
    files: ['activities', 'client', 'compare', 'interceptors', 'lib', 'plan', 'providers', 'transfer', 'worker', 'workflows'].map((d) => `${d}/**/*.ts`),
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "NewExpression[callee.name='Error']",
        message: 'Throw a registry error, imagoError(CODE, detail) from lib/errors.ts; where a plain Error never leaves this module, say so in an eslint-disable comment.',
      }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      'no-restricted-imports': ['error', {
        paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code must be deterministic: no Node built-ins. Do this in an activity.' })),
        patterns: [
          { group: ['mysql2', 'mysql2/*', '@aws-sdk/*', '@vlasky/zongji', '@temporalio/worker', '@temporalio/client', '@temporalio/activity'], message: 'Workflow code must not do I/O: call an activity.' },
          { group: ['../activities/*', '../lib/*', '../providers/*', '../transfer/*', '../interceptors/*', '../compare/*', '!../activities/types', '!../lib/errors', '!../lib/plan-types'], message: 'Workflow code may import only types from other parts (import type ...).', allowTypeImports: true },
        ],
      }],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'No process in workflows: pass values as arguments.' },
        { name: 'setImmediate', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'require', message: 'Static imports only in workflows.' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: 'The workflow sandbox replaces it, but say so: use uuid4() or a seeded value from @temporalio/workflow.' },
      ],
    },
  },
);
