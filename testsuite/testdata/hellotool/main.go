// Command hellotool is a tiny tool module the bed's first-run progress test builds.
package main

func main() { println("hello") }
