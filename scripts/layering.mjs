// The layering rule of ARCHITECTURE.md, checked over package.json dependencies
// and over every import in every workspace package. Plain JavaScript so that it
// runs before anything is built.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** Which workspace packages each package may use (ARCHITECTURE.md, "Layers"). */
export const LAYERS = Object.freeze({
  '@iommufd-sim/uapi-types': [],
  '@iommufd-sim/hw-models': ['@iommufd-sim/uapi-types'],
  '@iommufd-sim/fault-queue': ['@iommufd-sim/uapi-types'],
  '@iommufd-sim/viommu': ['@iommufd-sim/uapi-types', '@iommufd-sim/hw-models'],
  '@iommufd-sim/iommufd-core': [
    '@iommufd-sim/uapi-types',
    '@iommufd-sim/hw-models',
    '@iommufd-sim/fault-queue',
    '@iommufd-sim/viommu',
  ],
});

/** Folders whose packages (apps) may use any package. */
const APP_FOLDERS = ['apps'];
const SCOPE = '@iommufd-sim/';
const DEPENDENCY_FIELDS = [
  'dependencies',
  'devDependencies',
  'peerDependencies',
  'optionalDependencies',
];
const SOURCE_EXTENSIONS = /\.(?:[cm]?[jt]sx?)$/;
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist', '.turbo', '.test-results', 'coverage']);

/** Lists the workspace packages named by the root package.json `workspaces` globs. */
export function listWorkspacePackages(rootDir) {
  const root = JSON.parse(readFileSync(join(rootDir, 'package.json'), 'utf8'));
  const packages = [];
  for (const pattern of root.workspaces ?? []) {
    const parts = pattern.split('/');
    if (parts.length !== 2 || parts[1] !== '*') {
      throw new Error(`workspace pattern '${pattern}' is not of the form 'folder/*'`);
    }
    const folder = join(rootDir, parts[0]);
    if (!existsSync(folder)) continue;
    for (const entry of readdirSync(folder).sort()) {
      const dir = join(folder, entry);
      const manifestPath = join(dir, 'package.json');
      if (!existsSync(manifestPath)) continue;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      packages.push({ name: manifest.name, dir, folder: parts[0], manifest });
    }
  }
  return packages;
}

/**
 * Blanks out comments and the contents of string literals, keeping every
 * offset, so that an import shown in a doc comment or written inside a string
 * is not taken for a real one. Returns the blanked code and the original
 * contents of each string by the offset where its contents start.
 */
export function maskSource(source) {
  let code = '';
  const strings = new Map();
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source[i];
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      while (i < n && source[i] !== '\n') {
        code += ' ';
        i++;
      }
    } else if (c === '/' && next === '*') {
      code += '  ';
      i += 2;
      while (i < n && !(source[i] === '*' && source[i + 1] === '/')) {
        code += source[i] === '\n' ? '\n' : ' ';
        i++;
      }
      if (i < n) {
        code += '  ';
        i += 2;
      }
    } else if (c === '"' || c === "'" || c === '`') {
      code += c;
      i++;
      const start = i;
      while (i < n && source[i] !== c) i += source[i] === '\\' ? 2 : 1;
      const end = Math.min(i, n);
      strings.set(start, source.slice(start, end));
      code += source.slice(start, end).replace(/[^\n]/g, '_');
      if (i < n) {
        code += c;
        i++;
      }
    } else {
      code += c;
      i++;
    }
  }
  return { code, strings };
}

const SPECIFIER_PATTERNS = [
  /\bimport\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*(['"])(_+)\1/dg,
  /\bexport\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*(['"])(_+)\1/dg,
  /\bimport\s*(['"])(_+)\1/dg,
  /\bimport\s*\(\s*(['"])(_+)\1\s*\)/dg,
  /\brequire\s*\(\s*(['"])(_+)\1\s*\)/dg,
];

/** Every module specifier a source file imports, with its line number. */
export function findImports(source) {
  const { code, strings } = maskSource(source);
  const found = new Map();
  for (const pattern of SPECIFIER_PATTERNS) {
    for (const match of code.matchAll(pattern)) {
      const at = match.indices[2][0];
      const specifier = strings.get(at);
      if (specifier !== undefined && !found.has(at)) found.set(at, specifier);
    }
  }
  return [...found.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([at, specifier]) => ({ specifier, line: code.slice(0, at).split('\n').length }));
}

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir).sort()) {
    if (SKIPPED_FOLDERS.has(entry)) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (SOURCE_EXTENSIONS.test(entry) && !entry.endsWith('.d.ts')) yield path;
  }
}

function scopedPackageOf(specifier) {
  if (!specifier.startsWith(SCOPE)) return undefined;
  return specifier.split('/').slice(0, 2).join('/');
}

function isInside(dir, path) {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && !rel.includes(`:${sep}`));
}

/**
 * Checks the whole repository. Returns one entry per violation, each with the
 * package, the file (relative to the root), the line and a sentence saying why.
 */
export function checkLayering(rootDir) {
  const root = resolve(rootDir);
  const packages = listWorkspacePackages(root);
  const names = new Set(packages.map((p) => p.name));
  const violations = [];
  const report = (pkg, file, line, message) =>
    violations.push({ package: pkg.name, file: relative(root, file), line, message });

  for (const pkg of packages) {
    const isApp = APP_FOLDERS.includes(pkg.folder);
    const manifestPath = join(pkg.dir, 'package.json');
    if (!isApp && !(pkg.name in LAYERS)) {
      report(pkg, manifestPath, 1, `${pkg.name} is not in the layering table of ARCHITECTURE.md`);
      continue;
    }
    const allowed = new Set(isApp ? names : LAYERS[pkg.name]);
    allowed.add(pkg.name);
    const declared = new Set();
    for (const field of DEPENDENCY_FIELDS) {
      for (const dep of Object.keys(pkg.manifest[field] ?? {})) {
        if (!dep.startsWith(SCOPE)) continue;
        declared.add(dep);
        if (!allowed.has(dep)) {
          report(pkg, manifestPath, 1, `${field} names ${dep}, which ${pkg.name} may not use`);
        }
      }
    }
    for (const file of sourceFiles(pkg.dir)) {
      for (const { specifier, line } of findImports(readFileSync(file, 'utf8'))) {
        const target = scopedPackageOf(specifier);
        if (target !== undefined) {
          if (!allowed.has(target)) {
            report(pkg, file, line, `imports ${specifier}, which ${pkg.name} may not use`);
          } else if (target !== pkg.name && !declared.has(target)) {
            report(pkg, file, line, `imports ${specifier} without declaring it in package.json`);
          }
          continue;
        }
        if (!specifier.startsWith('.')) continue;
        const resolved = resolve(dirname(file), specifier);
        if (isInside(pkg.dir, resolved)) continue;
        const other = packages.find((p) => p !== pkg && isInside(p.dir, resolved));
        if (other !== undefined) {
          report(pkg, file, line, `reaches into ${other.name} by path ('${specifier}')`);
        }
      }
    }
  }
  return violations;
}
