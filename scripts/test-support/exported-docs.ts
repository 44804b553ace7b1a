// Checks that every export of a package's entry point carries a doc comment,
// so hovering any name in an editor says what it is.
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

function undocumentedExports(entry: string): string[] {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (source === undefined) throw new Error(`no source file ${entry}`);
  const module = checker.getSymbolAtLocation(source);
  if (module === undefined) throw new Error(`no module symbol for ${entry}`);
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

/** Declares the test that every export of the entry source at `entryUrl` is documented. */
export function describeExportDocs(entryUrl: URL): void {
  describe('documentation', () => {
    it('every export has a doc comment', () => {
      expect(undocumentedExports(entryUrl.pathname)).toEqual([]);
    }, 60_000);
  });
}
