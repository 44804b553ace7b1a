// Every export of the package carries a doc comment, so hovering any name in
// an editor says what it is.
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

function undocumentedExports(): string[] {
  const entry = new URL('../src/index.ts', import.meta.url).pathname;
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (source === undefined) throw new Error('no entry');
  const module = checker.getSymbolAtLocation(source);
  if (module === undefined) throw new Error('no module symbol');
  const missing: string[] = [];
  for (const exported of checker.getExportsOfModule(module)) {
    const symbol =
      exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const documented =
      symbol.getDocumentationComment(checker).length > 0 || symbol.getJsDocTags(checker).length > 0;
    if (!documented) missing.push(exported.getName());
  }
  return missing;
}

describe('documentation', () => {
  it('every export has a doc comment', () => {
    expect(undocumentedExports()).toEqual([]);
  }, 60_000);
});
