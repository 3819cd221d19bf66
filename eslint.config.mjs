// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // services/client/uppy.mts belongs to the Uppy page's own TypeScript project (ESM with
  // bundler resolution, `tsc -p services/api/uppy`), which the root project service cannot load.
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.data/**', 'scratch/**', 'coverage/**', 'test-artifacts/**', 'services/api/public/vendor/**', '**/*.js', '**/*.mjs', 'services/client/uppy.mts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-control-regex': 'off',
    },
  },
  {
    // Tests read untyped JSON bodies.
    files: ['tests/**/*.ts', 'tests/**/*.mts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Workflow code must be deterministic: no Node builtins, no I/O clients (Temporal's samples ship this override).
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'path', 'crypto', 'http', 'https', 'net', 'child_process', 'os', 'stream'], message: 'workflows must be deterministic: no Node builtins' },
            { group: ['@aws-sdk/*', 'pg', 'typeorm', 'sharp', 'fluent-ffmpeg', 'express', 'pino', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'], message: 'workflows reach infrastructure only through activities' },
            { group: ['../services/shared/*', '!../services/shared/media-types'], message: 'workflows may import only the pure media-types module from services/shared' },
          ],
        },
      ],
    },
  },
);
