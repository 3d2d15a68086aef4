// Remove build outputs (the tsc output and both bundles).
import { rmSync } from 'node:fs';

for (const path of ['lib', 'tsconfig.tsbuildinfo', 'wanllm_jupyter/labextension', 'wanllm_jupyter/static']) {
  rmSync(path, { recursive: true, force: true });
}
