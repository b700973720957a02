package workflows

// workflowRegistry is what Register needs: a worker, a replayer and the test environment all
// have it.
type workflowRegistry interface {
	RegisterWorkflow(w any)
}

// Register registers every rollgate workflow, so that the worker, the test bed and the replay
// tests run the same set.
func Register(r workflowRegistry) {
	r.RegisterWorkflow(Deployment)
	r.RegisterWorkflow(KeyRetirement)
	r.RegisterWorkflow(Rollback)
	r.RegisterWorkflow(TokenRevocation)
	r.RegisterWorkflow(KeyRotation)
	r.RegisterWorkflow(TokenMonitor)
}
