// The entry esbuild bundles (scripts/bundle-terminal) into Public/vendor/xterm.js: Debian's
// node-xterm (xterm.js 3.8, CommonJS) with its fit addon, as one ES module the console page
// imports. Nothing of xterm.js is committed; this file only names what the bundle exports.
import { Terminal } from "xterm";
import * as fit from "xterm/lib/addons/fit/fit.js";
import "xterm/lib/xterm.css";

Terminal.applyAddon(fit);

export { Terminal };
