/** SVG files import as their source text (the labextension build loads them with `asset/source`). */
declare module '*.svg' {
  const source: string;
  export default source;
}
