// Package jsonfile will reproduce the course notes' ticket store: a file
// holding {"count": N}, guarded by flock (correct) or not at all (to show
// overselling and torn files). Not built yet.
package jsonfile
