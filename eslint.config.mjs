// ESLint flat config for the browser code (js/): typescript-eslint's type-checked
// recommended rules (floating promises, unsafe any, ...) against tsconfig.test.json,
// which covers the sources and their tests. Formatting is Prettier's job:
// eslint-config-prettier turns off the rules it would fight with.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores([
    'lib/',
    'node_modules/',
    'wanllm_jupyter/',
    'js/shared/api-types.ts' // generated from the API models (npm run api-types)
  ]),
  js.configs.recommended,
  {
    files: ['js/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      globals: globals.browser,
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname }
    }
  },
  { files: ['js/style/*.js'], languageOptions: { sourceType: 'module', globals: globals.browser } },
  { files: ['js/scripts/*.mjs', 'eslint.config.mjs'], languageOptions: { globals: globals.node } },
  prettier
);
