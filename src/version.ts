// The build's version, read once from package.json so metrics and --version agree.
export const VERSION = '0.1.0';
