// Run Python code under the real MicroPython runtime (WebAssembly port, npm
// @micropython/micropython-webassembly-pyscript) with node.
//
//   node run_micropython.mjs [--dir SRC]... -c CODE
//
// Every .py and .mpy file under each SRC directory is copied (keeping sub-folders) into /fw in MicroPython's
// in-memory filesystem, /fw is put first on sys.path, then CODE runs. stdout/stderr are passed through;
// the exit code is 1 when CODE raises.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const dirs = [];
let code = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--dir") dirs.push(argv[++i]);
  else if (argv[i] === "-c") code = argv[++i];
  else { console.error(`run_micropython: unknown argument ${argv[i]}`); process.exit(2); }
}
if (code === null) { console.error("run_micropython: -c CODE is required"); process.exit(2); }

const mp = await loadMicroPython({
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function copyTree(root, dir) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "__pycache__" || name === "host") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { copyTree(root, p); continue; }
    if (!name.endsWith(".py") && !name.endsWith(".mpy")) continue;
    const dest = "/fw/" + relative(root, p);
    mp.FS.mkdirTree(dest.substring(0, dest.lastIndexOf("/")));
    mp.FS.writeFile(dest, readFileSync(p));
  }
}
mp.FS.mkdirTree("/fw");
for (const d of dirs) copyTree(d, d);

try {
  mp.runPython("import sys\nsys.path.insert(0, '/fw')\n" + code);
} catch (err) {
  console.error(String(err && err.message ? err.message : err));
  process.exit(1);
}
