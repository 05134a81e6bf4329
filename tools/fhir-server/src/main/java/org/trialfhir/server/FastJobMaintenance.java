package org.trialfhir.server;

import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import org.springframework.beans.factory.config.BeanPostProcessor;

/**
 * Runs Batch2 job maintenance every second instead of every minute, so that a small
 * bulk $export finishes within seconds. It must act before the job is scheduled,
 * which is why it is a bean post-processor rather than a setter call after start-up.
 */
public class FastJobMaintenance implements BeanPostProcessor {
  static final long MAINTENANCE_INTERVAL_MILLIS = 1000;

  @Override
  public Object postProcessBeforeInitialization(Object bean, String beanName) {
    if (bean instanceof JobMaintenanceServiceImpl maintenance) {
      maintenance.setScheduledJobFrequencyMillis(MAINTENANCE_INTERVAL_MILLIS);
    }
    return bean;
  }
}
