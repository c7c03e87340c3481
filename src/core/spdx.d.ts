/** spdx-expression-parse ships no types: the parse tree of an SPDX licence expression. */
declare module 'spdx-expression-parse' {
  type Node = { license: string; plus?: true; exception?: string } | { left: Node; conjunction: 'and' | 'or'; right: Node };
  function parse(source: string): Node;
  export default parse;
}
declare module 'spdx-license-ids/index.json' {
  const ids: string[];
  export default ids;
}
declare module 'spdx-license-ids/deprecated.json' {
  const ids: string[];
  export default ids;
}
