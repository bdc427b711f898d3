// The list of a user's own problems (/problems/): draw each formula with KaTeX.
import { renderMath } from "./math.js";

for (const el of document.querySelectorAll("#problem-table .formula[data-latex]")) renderMath(el);
