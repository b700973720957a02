package main

import (
	"fmt"
	"strings"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/workflows"
)

// deploymentPrefix starts every deployment's workflow id: deploy/<apiId>/<stage>.
const deploymentPrefix = "deploy/"

// stageRef is a stage as operators name it on the command line: <apiId>/<stage>.
type stageRef struct {
	APIID, Stage string
}

// parseStage accepts "<apiId>/<stage>" or a deployment's workflow id, "deploy/<apiId>/<stage>".
func parseStage(arg string) (stageRef, error) {
	parts := strings.Split(strings.TrimPrefix(arg, deploymentPrefix), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return stageRef{}, &codeError{exitInvalid, fmt.Errorf("deployment %q: name it <apiId>/<stage> or deploy/<apiId>/<stage>", arg)}
	}
	return stageRef{APIID: parts[0], Stage: parts[1]}, nil
}

func (s stageRef) String() string { return s.APIID + "/" + s.Stage }

// deploymentID is the workflow id of the stage's deployments.
func (s stageRef) deploymentID() string { return deploymentPrefix + s.String() }

// rollbackID is the workflow id of the stage's rollbacks of finished releases.
func (s stageRef) rollbackID() string { return workflows.RollbackWorkflowID(s.APIID, s.Stage) }

// target is the stage as the activities name it (REST; HTTP APIs are probed the same way).
func (s stageRef) target() *activities.Target {
	return &activities.Target{APIID: s.APIID, Stage: s.Stage}
}

// stageOf names the stage of a deployment's workflow id, for messages that tell the operator
// what to type next.
func stageOf(deploymentID string) string { return strings.TrimPrefix(deploymentID, deploymentPrefix) }

// deploymentID accepts "deploy/<api>/<stage>" or "<api>/<stage>".
func deploymentID(arg string) (string, error) {
	s, err := parseStage(arg)
	if err != nil {
		return "", err
	}
	return s.deploymentID(), nil
}

// stageTarget names a stage given as <apiId>/<stage>.
func stageTarget(arg string) (*activities.Target, error) {
	s, err := parseStage(arg)
	if err != nil {
		return nil, err
	}
	return s.target(), nil
}
