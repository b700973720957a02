package main

// StatusOf is the status command's core, for tests that bring a Temporal client of their own.
var StatusOf = statusOf
