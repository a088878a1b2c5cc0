// Autodiff's public surface: the gradient generator, the rule table and its error.
export { gradients, type GradientOptions } from "./gradients.js";
export { RULES } from "./rules.js";
export { MissingGradientRule, type GradContext, type GradRule, type RuleTable } from "./types.js";
